"""WSGI middleware: the request metrics of the Flask extension for any WSGI app (Django, Pyramid, bare WSGI).

``app = StatsdMiddleware(app, service="shop", endpoint=PathTemplates(["/user/<id>"]))``: every request is
counted and timed until its body has been fully sent, tagged with a bounded ``endpoint`` and ``method``
(see :mod:`statsd_instrument.http_metrics`); its metrics are buffered together when it ends and leave
within the client's flush window.

The ``endpoint`` label comes from a resolver ``fn(environ) -> str | None`` called after the app answered
(``None`` means unmatched). The default reads ``environ["statsd_instrument.endpoint"]``, which an app or
framework hook may set to its route template; everything else is :data:`UNMATCHED_ENDPOINT`. Ready-made
resolvers: :class:`PathTemplates` (a list of templates) and :func:`django_endpoint` (with
:func:`connect_django_exceptions` for the exceptions Django answers itself). An app that answers an
exception itself can name it in ``environ["statsd_instrument.exception"]``; an exception that escapes the
app is counted (as a 500) and re-raised. An app can also set ``environ["statsd_instrument.skip"]`` to
send nothing for a request and ``environ["statsd_instrument.tags"]`` (checked ``"k:v"`` strings) to add tags.

>>> def hello(environ, start_response):
...     start_response("200 OK", [("Content-Type", "text/plain")])
...     return [b"hi"]
>>> app = StatsdMiddleware(hello, service="hello")
>>> app.recorder.service_tag
'service:hello'
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

from statsd_instrument.http_metrics import EXCEPTION_KEY
from statsd_instrument.middleware import MiddlewareBase, keyed_endpoint

Environ = dict
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
_CONVERTED = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


#: the default resolver: the template the app stored in ``environ["statsd_instrument.endpoint"]``
environ_endpoint = keyed_endpoint


class PathTemplates:
    """Resolver from route templates: ``<name>`` / ``<int:name>`` match one segment, ``<path:name>`` the rest.

    >>> resolve = PathTemplates(["/test/", "/user/<int:user_id>", "/files/<path:name>"])
    >>> resolve({"PATH_INFO": "/user/42"}), resolve({"PATH_INFO": "/user/bob"})
    ('/user/<int:user_id>', None)
    >>> resolve({"PATH_INFO": "/files/a/b.txt"}), resolve({"PATH_INFO": "/nope"})
    ('/files/<path:name>', None)
    """

    def __init__(self, templates: Sequence[str]) -> None:
        if isinstance(templates, str):
            raise TypeError(f"templates: expected a list of route templates, got {templates!r}")
        self.exact: dict[str, str] = {}
        self.patterns: list[tuple[re.Pattern[str], str]] = []
        for template in templates:
            if not isinstance(template, str) or not template.startswith("/"):
                raise ValueError(
                    f"templates: a route template must be a string starting with '/', got {template!r}"
                )
            if "<" not in template:
                self.exact[template] = template
                continue
            regex, pos = [], 0
            for m in _CONVERTED.finditer(template):
                regex.append(re.escape(template[pos : m.start()]))
                converter = m.group(1)
                regex.append({"int": r"\d+", "float": r"\d+\.\d+", "path": r".+"}.get(converter, r"[^/]+"))
                pos = m.end()
            regex.append(re.escape(template[pos:]))
            self.patterns.append((re.compile("".join(regex) + r"\Z"), template))

    def __call__(self, environ: Environ) -> str | None:
        path = environ.get("PATH_INFO", "")
        hit = self.exact.get(path)
        if hit is not None:
            return hit
        for pattern, template in self.patterns:
            if pattern.match(path):
                return template
        return None


def django_endpoint(environ: Environ) -> str | None:
    """Resolver for Django: the matched URL pattern's route (``/user/<int:user_id>/``), or ``None``.

    Uses ``django.urls.resolve`` on ``PATH_INFO`` (Django must be set up, as it is inside its WSGI app).
    """
    from django.urls import Resolver404, resolve

    try:
        match = resolve(environ.get("PATH_INFO", "/"))
    except Resolver404:
        return None
    route = getattr(match, "route", None)
    if not route:
        return None
    return "/" + route.lstrip("^").rstrip("$")


def connect_django_exceptions() -> None:
    """Make Django name, for :class:`StatsdMiddleware`, the exceptions its handlers turn into 500 answers.

    Django answers a view's exception itself, so the middleware sees only the 500; this connects a receiver
    to Django's ``got_request_exception`` signal that stores the class name in the request's environ.
    Idempotent. Call it in your ``wsgi.py`` next to the middleware.
    """
    from django.core.signals import got_request_exception

    got_request_exception.connect(_django_exception, dispatch_uid="statsd_instrument.wsgi")


def _django_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
    error = sys.exc_info()[1]  # the signal is sent while Django handles the exception
    environ = getattr(request, "environ", None)
    if error is not None and isinstance(environ, dict):
        environ[EXCEPTION_KEY] = type(error).__name__


class StatsdMiddleware(MiddlewareBase):
    """Wraps a WSGI app so that every request pushes ``request_count``, ``request_latency_seconds`` and
    ``request_exceptions`` (plus the opt-in in-flight and info gauges), like the Flask extension.

    Options (keyword-only): ``client`` (default :data:`statsd_instrument.statsd`), ``service``,
    ``endpoint`` (resolver, see the module docstring), ``exclude_paths`` (prefixes and ``re.compile``
    patterns), ``exclude`` (``predicate(environ) -> bool``), ``tags`` (static), ``request_tags``
    (``fn(environ) -> dict``), ``in_flight``, ``version``.

    >>> def boom(environ, start_response):
    ...     raise ZeroDivisionError
    >>> app = StatsdMiddleware(boom, service="demo", exclude_paths=["/health"])
    >>> app({"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}, lambda *a: None)
    Traceback (most recent call last):
    ...
    ZeroDivisionError
    """

    default_service = "wsgi"
    default_endpoint = staticmethod(keyed_endpoint)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self.filtering and self.skipped(environ):
            return self.app(environ, start_response)
        request = _new_request(_Request)  # no __init__ call: the fields are set here, once per request
        request.start = time.perf_counter()
        request.middleware = self
        request.environ = environ
        request._start_response = start_response
        request.status = "500"
        request.exception = None
        request.done = False
        request.body = ()
        if self.recorder.in_flight:
            self.recorder.started()
        try:
            request.body = self.app(environ, request.start_response)
        except BaseException as error:
            request.exception = type(error).__name__
            request.status = "500"
            request.close()
            raise
        return request


class _Request:
    """One request in flight, and the response iterable handed to the server: the app's body passed through;
    the request ends (its metrics are sent) when the server closes it, after the last byte."""

    __slots__ = (
        "_start_response",
        "body",
        "done",
        "environ",
        "exception",
        "middleware",
        "start",
        "status",
    )

    middleware: StatsdMiddleware
    environ: Environ
    _start_response: StartResponse
    start: float
    status: str
    exception: str | None
    done: bool
    body: Iterable[bytes]

    def start_response(self, status: str, headers: list, exc_info: Any = None) -> Any:
        """The ``start_response`` the app gets: notes the status, then calls the server's."""
        self.status = status
        return self._start_response(status, headers, exc_info)

    def __iter__(self) -> Iterator[bytes]:
        # A generator, not an iterator class with __next__: the end of the body then costs no StopIteration
        # raised through a Python frame (measured: about 10 us more per request under uwsgi).
        try:
            yield from self.body
        except BaseException as error:
            if self.exception is None:
                self.exception = type(error).__name__
            raise

    def close(self) -> None:
        """Close the app's body, then send the request's metrics (once). The middleware also calls it when
        the app raised (there is no body then)."""
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            if not self.done:
                self.done = True
                self.middleware.finish(
                    self.environ, time.perf_counter() - self.start, self.status, self.exception
                )


_new_request = object.__new__
