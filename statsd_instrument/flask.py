"""Flask extension: rate, errors and latency per route template, pushed as DogStatsD by every worker.

``StatsdInstrument(app)`` (or ``ext = StatsdInstrument(); ext.init_app(app)`` in an app factory) makes the app
send the request metrics of :mod:`statsd_instrument.http_metrics` for every request, all of one request in
one datagram flushed once the response has been fully sent (streamed responses included).

Settings come from ``app.config`` first, then the constructor's arguments, then the environment:

====================== ============================================================= ====================
key                    meaning                                                       default
====================== ============================================================= ====================
``STATSD_SERVICE``     the ``service`` tag (also read from the environment)          ``app.name``
``STATSD_EXCLUDE_PATHS`` path prefixes (str) and regexes (``re.compile``) to skip    none
``STATSD_EXCLUDE``     ``predicate(request) -> bool``: True skips the request        none
``STATSD_ENDPOINT``    ``fn(request) -> str | None`` naming the endpoint label       the route template
``STATSD_TAGS``        static extra tags (dict or ``"k:v"`` list)                    none
``STATSD_REQUEST_TAGS`` ``fn(request) -> dict`` of per-request tags (keep bounded!)  none
``STATSD_IN_FLIGHT``   send the ``request_in_flight`` gauge (+1/-1 deltas; env too)  False
``STATSD_APP_VERSION`` send ``app_info{version=...}`` (also read from the environment) none
``STATSD_CLIENT``      a :class:`statsd_instrument.Client` to send with               see below
====================== ============================================================= ====================

Without ``STATSD_CLIENT``, an app whose config sets ``STATSD_HOST``, ``STATSD_PORT`` or ``STATSD_PREFIX``
gets its own client; otherwise the process-wide :data:`statsd_instrument.statsd` (which reads the
environment) is used. Views decorated with :func:`exempt` are never measured.

>>> from flask import Flask
>>> app = Flask("shop")
>>> ext = StatsdInstrument(app)
>>> app.extensions["statsd_instrument"].recorder.service_tag
'service:shop'
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, TypeVar

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from statsd_instrument.http_metrics import (
    UNMATCHED_ENDPOINT,
    PathFilter,
    RequestRecorder,
    Tags,
    check_bool,
    check_callable,
    clean_tag_value,
    log,
    method_label,
    request_tag_list,
)

EXTENSION_KEY = "statsd_instrument"
_G_KEY = "_statsd_instrument"
_EXEMPT_ATTR = "_statsd_instrument_exempt"
_UNSET: Any = object()

F = TypeVar("F", bound=Callable[..., Any])


def exempt(view: F) -> F:
    """Decorator: requests served by ``view`` send no metrics (health checks, metrics endpoints).

    >>> @exempt
    ... def health():
    ...     return "ok"
    >>> health._statsd_instrument_exempt
    True
    """
    setattr(view, _EXEMPT_ATTR, True)
    return view


class _AppSettings:
    """What one app was configured with; lives in ``app.extensions["statsd_instrument"]``."""

    __slots__ = ("_templates", "endpoint_fn", "recorder", "request_tags_fn", "skip", "skip_path")

    def __init__(
        self,
        recorder: RequestRecorder,
        skip_path: PathFilter,
        skip: Callable[[Any], bool] | None,
        endpoint_fn: Callable[[Any], str | None] | None,
        request_tags_fn: Callable[[Any], Tags] | None,
    ) -> None:
        self.recorder = recorder
        self.skip_path = skip_path
        self.skip = skip
        self.endpoint_fn = endpoint_fn
        self.request_tags_fn = request_tags_fn
        self._templates: dict[str, str] = {}  # rule string -> cleaned tag value (bounded by the url map)

    def endpoint_of(self, app: Flask) -> str:
        """The ``endpoint`` label of the current request: the route template, bounded when unmatched."""
        if self.endpoint_fn is not None:
            try:
                name = self.endpoint_fn(request)
            except Exception:
                log.warning("statsd_instrument: STATSD_ENDPOINT failed; using the route", exc_info=True)
                name = None
            if name:
                return clean_tag_value(name)
        rule = request.url_rule
        if rule is None and isinstance(request.routing_exception, MethodNotAllowed):
            rule = _rule_for_other_method(app, request.routing_exception)
        if rule is None:
            return UNMATCHED_ENDPOINT
        template = self._templates.get(rule.rule)
        if template is None:
            template = self._templates[rule.rule] = clean_tag_value(rule.rule)
        return template


def _rule_for_other_method(app: Flask, error: MethodNotAllowed) -> Any:
    # A 405 leaves request.url_rule unset; the path did match a route, for another method: name that route.
    try:
        adapter = app.create_url_adapter(request)
        rule, _ = adapter.match(method=(error.valid_methods or ["GET"])[0], return_rule=True)
        return rule
    except Exception:
        return None


class _RequestState:
    """Per-request state kept in ``g`` and in the response's close callback."""

    __slots__ = ("done", "endpoint", "exception", "handed_over", "method", "start", "status", "tags")

    def __init__(self, start: float) -> None:
        self.start = start
        self.method = ""
        self.endpoint = UNMATCHED_ENDPOINT
        self.status = 500
        self.exception: str | None = None
        self.tags: list[str] = []
        self.handed_over = False
        self.done = False


class StatsdInstrument:
    """The Flask extension. ``StatsdInstrument(app)``, or create it once and ``init_app(app)`` per app.

    Keyword arguments are defaults for every app this object initialises; ``app.config["STATSD_*"]`` keys
    override them (see the module docstring). Nothing about an app is stored on the extension object.

    >>> from flask import Flask
    >>> ext = StatsdInstrument(service="api", exclude_paths=["/static/"])
    >>> a, b = Flask("a"), Flask("b")
    >>> ext.init_app(a); ext.init_app(b)
    >>> [x.extensions["statsd_instrument"].recorder.service_tag for x in (a, b)]
    ['service:api', 'service:api']
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        client: Any = None,
        service: str | None = None,
        exclude_paths: Any = None,
        exclude: Callable[[Any], bool] | None = None,
        endpoint: Callable[[Any], str | None] | None = None,
        tags: Tags = None,
        request_tags: Callable[[Any], Tags] | None = None,
        in_flight: bool = False,
        version: str | None = None,
    ) -> None:
        self._defaults = {
            "STATSD_CLIENT": client,
            "STATSD_SERVICE": service,
            "STATSD_EXCLUDE_PATHS": exclude_paths,
            "STATSD_EXCLUDE": exclude,
            "STATSD_ENDPOINT": endpoint,
            "STATSD_TAGS": tags,
            "STATSD_REQUEST_TAGS": request_tags,
            "STATSD_IN_FLIGHT": in_flight,
            "STATSD_APP_VERSION": version,
        }
        if app is not None:
            self.init_app(app)

    exempt = staticmethod(exempt)

    def _setting(self, app: Flask, key: str, env: bool = False) -> Any:
        value = app.config.get(key, _UNSET)
        if value is _UNSET or value is None:
            value = self._defaults.get(key)
        if value is None and env:
            value = os.environ.get(key) or None
        return value

    def init_app(self, app: Flask) -> None:
        """Read the app's settings, register the request hooks and ``app.extensions["statsd_instrument"]``.

        Bad settings raise ``ValueError``/``TypeError`` naming the config key and the value.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(f"statsd_instrument is already initialised on app {app.name!r}")
        recorder = RequestRecorder(
            _client_for(app, self._setting(app, "STATSD_CLIENT")),
            service=self._setting(app, "STATSD_SERVICE", env=True) or app.name,
            tags=self._setting(app, "STATSD_TAGS"),
            in_flight=check_bool(
                self._setting(app, "STATSD_IN_FLIGHT", env=True) or False, "STATSD_IN_FLIGHT"
            ),
            version=self._setting(app, "STATSD_APP_VERSION", env=True),
            tags_field="STATSD_TAGS",
        )
        app.extensions[EXTENSION_KEY] = _AppSettings(
            recorder,
            PathFilter(self._setting(app, "STATSD_EXCLUDE_PATHS"), "STATSD_EXCLUDE_PATHS"),
            check_callable(self._setting(app, "STATSD_EXCLUDE"), "STATSD_EXCLUDE"),
            check_callable(self._setting(app, "STATSD_ENDPOINT"), "STATSD_ENDPOINT"),
            check_callable(self._setting(app, "STATSD_REQUEST_TAGS"), "STATSD_REQUEST_TAGS"),
        )
        # First before_request and last after_request, so the measurement spans the other hooks too (and
        # runs even when another before_request answers the request itself).
        app.before_request_funcs.setdefault(None, []).insert(0, _before_request)
        app.after_request_funcs.setdefault(None, []).insert(0, _after_request)
        app.teardown_request(_teardown_request)
        # Exceptions answered by an error handler never reach teardown_request: note them on their way in.
        original = app.handle_user_exception

        def handle_user_exception(error: Exception) -> Any:
            _note_exception(error)
            return original(error)

        app.handle_user_exception = handle_user_exception  # type: ignore[method-assign]


def _client_for(app: Flask, client: Any) -> Any:
    if client is not None:
        return client
    from statsd_instrument import Client, statsd

    if any(k in app.config for k in ("STATSD_HOST", "STATSD_PORT", "STATSD_PREFIX")):
        return Client(
            host=app.config.get("STATSD_HOST"),
            port=app.config.get("STATSD_PORT"),
            prefix=app.config.get("STATSD_PREFIX"),
        )
    return statsd


def _skipped(settings: _AppSettings) -> bool:
    if settings.skip_path and settings.skip_path(request.path):
        return True
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if view is not None and getattr(view, _EXEMPT_ATTR, False):
        return True
    return settings.skip is not None and bool(settings.skip(request))


def _before_request() -> None:
    try:
        settings: _AppSettings = current_app.extensions[EXTENSION_KEY]
        if _skipped(settings):
            setattr(g, _G_KEY, None)
            return
        setattr(g, _G_KEY, _RequestState(time.perf_counter()))
        settings.recorder.started()
    except Exception:
        log.warning("statsd_instrument: before_request failed; the request is unaffected", exc_info=True)


def _state() -> _RequestState | None:
    state = g.get(_G_KEY, _UNSET)
    if state is _UNSET:  # before_request never ran (a URL value preprocessor raised): measure from here
        state = _RequestState(time.perf_counter())
        setattr(g, _G_KEY, state)
    return state


def _note_exception(error: BaseException) -> None:
    if isinstance(error, HTTPException):  # abort(), 404, 405: already visible as the status
        return
    try:
        state = _state()
        if state is not None and state.exception is None:
            state.exception = type(error).__name__
    except Exception:
        pass


def _label(state: _RequestState) -> None:
    settings: _AppSettings = current_app.extensions[EXTENSION_KEY]
    state.method = method_label(request.method)
    state.endpoint = settings.endpoint_of(current_app)
    state.tags = request_tag_list(settings.request_tags_fn, request, "STATSD_REQUEST_TAGS")


def _after_request(response: Response) -> Response:
    try:
        state = _state()
        if state is None:
            return response
        state.status = response.status_code
        _label(state)
        if not state.handed_over:
            state.handed_over = True
            recorder = current_app.extensions[EXTENSION_KEY].recorder
            # Called by the WSGI server once the body (streamed or not) has been fully sent.
            response.call_on_close(lambda: _finish(recorder, state))
    except Exception:
        log.warning("statsd_instrument: after_request failed; the request is unaffected", exc_info=True)
    return response


def _teardown_request(error: BaseException | None) -> None:
    try:
        state = g.get(_G_KEY)
        if state is None or state.done:
            return
        if error is not None:
            _note_exception(error)
        if not state.handed_over:  # the exception propagated (no response object): answered as a 500
            state.status = 500
            _label(state)
            _finish(current_app.extensions[EXTENSION_KEY].recorder, state)
    except Exception:
        log.warning("statsd_instrument: teardown failed; the request is unaffected", exc_info=True)


def _finish(recorder: RequestRecorder, state: _RequestState) -> None:
    if state.done:
        return
    state.done = True
    recorder.finished(
        state.method,
        state.endpoint,
        state.status,
        time.perf_counter() - state.start,
        state.exception,
        state.tags,
    )
