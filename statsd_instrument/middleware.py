"""What the WSGI and ASGI middlewares share, in one place: their options (checked once, a bad one raising
with its field), the exclusion test, per-request tags, and the end of a request handed to the
:class:`~statsd_instrument.http_metrics.RequestRecorder`. The Flask extension checks its settings with the
same functions.

A request is the WSGI environ or the ASGI scope: both are mappings, and the keys an app may set on them
(:data:`~statsd_instrument.http_metrics.ENDPOINT_KEY` and the others) are the contract's.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Union

from statsd_instrument.client import statsd
from statsd_instrument.http_metrics import (
    ENDPOINT_KEY,
    EXCEPTION_KEY,
    SKIP_KEY,
    TAGS_KEY,
    RequestRecorder,
    log,
    tag_list,
)
from statsd_instrument.validation import Tags

PathRule = Union[str, "re.Pattern[str]"]


class PathFilter:
    """Decides from a path whether a request is excluded: strings are prefixes, compiled patterns regexes.

    >>> skip = PathFilter(["/static/", re.compile(r"^/health/?$")], "exclude_paths")
    >>> skip("/static/app.js"), skip("/health"), skip("/healthz"), skip("/test/")
    (True, True, False, False)
    >>> PathFilter([42], "exclude_paths")
    Traceback (most recent call last):
    ...
    TypeError: exclude_paths: expected a path prefix (str) or a compiled regex (re.Pattern), got 42
    """

    __slots__ = ("patterns", "prefixes")

    def __init__(self, rules: Iterable[PathRule] | None, field: str) -> None:
        prefixes: list[str] = []
        patterns: list[re.Pattern[str]] = []
        if isinstance(rules, (str, re.Pattern)):
            rules = [rules]
        for rule in rules or ():
            if isinstance(rule, str):
                prefixes.append(rule)
            elif isinstance(rule, re.Pattern):
                patterns.append(rule)
            else:
                raise TypeError(
                    f"{field}: expected a path prefix (str) or a compiled regex (re.Pattern), got {rule!r}"
                )
        self.prefixes = tuple(prefixes)
        self.patterns = tuple(patterns)

    def __bool__(self) -> bool:
        return bool(self.prefixes or self.patterns)

    def __call__(self, path: str) -> bool:
        if path.startswith(self.prefixes):  # False for no prefixes
            return True
        return bool(self.patterns) and any(pattern.search(path) for pattern in self.patterns)


def check_callable(value: Any, field: str) -> Callable[..., Any] | None:
    """``value`` if it is ``None`` or callable, else ``TypeError`` naming ``field``.

    >>> check_callable(len, "endpoint") is len
    True
    >>> check_callable("x", "endpoint")
    Traceback (most recent call last):
    ...
    TypeError: endpoint: expected a callable or None, got 'x'
    """
    if value is not None and not callable(value):
        raise TypeError(f"{field}: expected a callable or None, got {value!r}")
    return value


def request_tag_list(fn: Callable[[Any], Tags] | None, arg: Any, field: str) -> list[str]:
    """Per-request tags from ``fn(arg)`` (the request or environ), cleaned; a failing ``fn`` gives none.

    >>> request_tag_list(lambda r: {"tenant": r["tenant"]}, {"tenant": "acme,inc"}, "request_tags")
    ['tenant:acme_inc']
    >>> request_tag_list(lambda r: 1 / 0, {}, "request_tags")
    []
    """
    if fn is None:
        return []
    try:
        return tag_list(fn(arg), field)
    except Exception:
        log.warning("statsd_instrument: %s failed; request counted without its tags", field, exc_info=True)
        return []


def keyed_endpoint(request: Any) -> str | None:
    """The endpoint the app stored in ``request["statsd_instrument.endpoint"]`` (the WSGI default resolver).

    >>> keyed_endpoint({"statsd_instrument.endpoint": "/user/<id>"}), keyed_endpoint({})
    ('/user/<id>', None)
    """
    return request.get(ENDPOINT_KEY)


class MiddlewareBase:
    """The WSGI and ASGI middlewares' constructor, options, exclusion test and end of a request.

    Subclasses name the request's path and method keys and their defaults (service, endpoint resolver).

    >>> class Mw(MiddlewareBase):
    ...     path_key, method_key, default_service = "path", "method", "demo"
    >>> mw = Mw(None, exclude_paths=["/health"])
    >>> mw.skipped({"path": "/health/live"}), mw.skipped({"path": "/orders"}), mw.recorder.service_tag
    (True, False, 'service:demo')
    """

    #: the request's path and method keys (WSGI environ; the ASGI scope has ``path`` and ``method``)
    path_key = "PATH_INFO"
    method_key = "REQUEST_METHOD"
    default_service = "wsgi"
    #: the resolver used when ``endpoint`` is not given
    default_endpoint: Callable[[Any], str | None] = staticmethod(keyed_endpoint)

    def __init__(
        self,
        app: Any,
        *,
        client: Any = None,
        service: str | None = None,
        endpoint: Callable[[Any], str | None] | None = None,
        exclude_paths: Any = None,
        exclude: Callable[[Any], bool] | None = None,
        tags: Tags = None,
        request_tags: Callable[[Any], Tags] | None = None,
        in_flight: bool = False,
        version: str | None = None,
    ) -> None:
        """Check and keep the options (a bad one raises naming its field); ``client`` None: ``statsd``."""
        self.app = app
        self.recorder = RequestRecorder(
            statsd if client is None else client,
            self.default_service if service is None else service,
            tags=tags,
            in_flight=bool(in_flight),
            version=version,
        )
        self.endpoint = check_callable(endpoint, "endpoint") or self.default_endpoint
        self._endpoint_keyed = self.endpoint is keyed_endpoint  # read the key, no call (WSGI's default)
        self.skip_path = (
            exclude_paths
            if isinstance(exclude_paths, PathFilter)
            else PathFilter(exclude_paths, "exclude_paths")
        )
        self.skip = check_callable(exclude, "exclude")
        self.request_tags = check_callable(request_tags, "request_tags")
        self._filter_paths = bool(self.skip_path)
        self.filtering = self._filter_paths or self.skip is not None

    def skipped(self, request: Any) -> bool:
        """Whether ``exclude_paths`` or ``exclude`` leave this request out (a failing predicate: measured)."""
        try:
            if self._filter_paths and self.skip_path(request.get(self.path_key, "")):
                return True
            return self.skip is not None and bool(self.skip(request))
        except Exception:
            log.warning(
                "statsd_instrument: exclude predicate failed; measuring the request",
                exc_info=True,
            )
            return False

    def finish(self, request: Any, elapsed_s: float, status: object, exception: str | None) -> None:
        """A request ended: resolve its endpoint and tags and hand it to the recorder (or, when the app set
        ``SKIP_KEY``, only undo its in-flight +1); never raises."""
        if request.get(SKIP_KEY):
            self.recorder.skipped()
            return
        try:
            if self._endpoint_keyed:
                endpoint = request.get(ENDPOINT_KEY)
            else:
                try:
                    endpoint = self.endpoint(request)
                except Exception:
                    log.warning("statsd_instrument: endpoint resolver failed", exc_info=True)
                    endpoint = None
            tags = request.get(TAGS_KEY)
            if not tags and self.request_tags is not None:
                tags = request_tag_list(self.request_tags, request, "request_tags")
            self.recorder.finished(
                request.get(self.method_key, ""),
                endpoint if isinstance(endpoint, str) else None,
                status,
                elapsed_s,
                exception or request.get(EXCEPTION_KEY),
                tags or (),
            )
        except Exception:
            log.warning("statsd_instrument: recording the request failed", exc_info=True)
