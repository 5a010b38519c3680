"""ASGI middleware: the request metrics of the Flask extension for any ASGI 3 app (Starlette, FastAPI, ...).

``app = StatsdASGIMiddleware(app, service="shop")``: every HTTP request is counted and timed until the app
hands the server its last body message (a streamed response is timed until its last chunk; work the app
does after that, such as background tasks, is not), tagged with a bounded ``endpoint`` and ``method`` (see
:mod:`statsd_instrument.http_metrics`); its metrics are buffered together when the app's call ends and
leave within the client's flush window.
``lifespan`` and ``websocket`` scopes pass through untouched. Starlette's
``app.add_middleware(StatsdASGIMiddleware, service="shop")`` works too; nothing here imports Starlette.

The ``endpoint`` label comes from a resolver ``fn(scope) -> str | None`` called when the request ends
(``None`` means unmatched, :data:`~statsd_instrument.http_metrics.UNMATCHED_ENDPOINT`). The default,
:func:`scope_endpoint`, reads ``scope["statsd_instrument.endpoint"]`` if the app set it, else the template
of the route Starlette (and so FastAPI) matched, which its router stores in ``scope["route"]``, with the
prefixes of the ``Mount``\\ s it sits under. Never the raw path. An exception that escapes the app is counted
with its class name and re-raised, also one raised after the response was sent (Starlette's error middleware
sends its 500, then re-raises); the status is the one already sent, or 500 if no response had started.
As in the WSGI middleware, an app may set ``scope["statsd_instrument.exception"]`` (an exception it answered
itself), ``scope["statsd_instrument.skip"]`` (send nothing) and ``scope["statsd_instrument.tags"]``.

>>> import asyncio
>>> from statsd_instrument import statsd
>>> from statsd_instrument.testing import capture
>>> async def hello(scope, receive, send):
...     await send({"type": "http.response.start", "status": 200, "headers": []})
...     await send({"type": "http.response.body", "body": b"hi"})
>>> async def nothing(message):
...     pass
>>> app = StatsdASGIMiddleware(hello, service="hello", client=statsd)
>>> with capture() as cap:
...     asyncio.run(app({"type": "http", "method": "GET", "path": "/x"}, None, nothing))
>>> cap.assert_emitted("request_count", tags={"endpoint": "<unmatched>", "status": "200"}).value
1.0
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Iterator, MutableMapping

from statsd_instrument.http_metrics import ENDPOINT_KEY
from statsd_instrument.middleware import MiddlewareBase

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_clock = time.perf_counter

# the message that starts a response, and those that can end it
_START = "http.response.start"
_BODY, _TRAILERS, _PATHSEND = (
    "http.response.body",
    "http.response.trailers",
    "http.response.pathsend",
)

# route templates with their Mount prefixes, per route object or, for routers that do not set
# scope["route"], per endpoint (both unhashable or not always hashable: keyed by id, the object kept in the
# value so that the id cannot be reused while the entry exists)
_templates: dict[int, tuple[Any, str | None]] = {}
_by_endpoint: dict[int, tuple[Any, str | None]] = {}


def scope_endpoint(scope: Scope) -> str | None:
    """The default resolver: ``scope["statsd_instrument.endpoint"]``, else the matched route's template.

    The template is ``scope["route"].path`` (set by the router of Starlette 1.10+ when a route matched, also
    for a 405, and by FastAPI's routes), prefixed with the paths of the ``Mount``\\ s leading to it from
    ``scope["router"]``. A path that matched a ``Mount`` but no route inside it is unmatched; a ``Mount`` of
    an app without routes (static files) gives the mount's path. Older Starlette sets only
    ``scope["endpoint"]``: then the template is that of the one route serving this endpoint (unmatched if
    several do).

    >>> class Route:
    ...     path = "/user/{id:int}"
    >>> scope_endpoint({"route": Route()}), scope_endpoint({"path": "/user/42"})
    ('/user/{id:int}', None)
    >>> scope_endpoint({"statsd_instrument.endpoint": "/custom"})
    '/custom'
    """
    named = scope.get(ENDPOINT_KEY)
    if named is not None:
        return named
    route = scope.get("route")
    if route is None:
        return _endpoint_template(scope)
    hit = _templates.get(id(route))
    if hit is not None and hit[0] is route:
        return hit[1]
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path:
        return None
    if getattr(route, "routes", None):
        # a Mount whose app routes further is left in scope["route"] only when no route inside matched
        template = None
    else:
        routes = getattr(scope.get("router"), "routes", None) or ()
        template = next((t for r, t in _walk(routes, "", 0) if r is route), path)
    _remember(_templates, route, template)
    return template


def _endpoint_template(scope: Scope) -> str | None:
    """The template of the only route whose endpoint is ``scope["endpoint"]`` (routers before 1.10)."""
    endpoint = scope.get("endpoint")
    router = scope.get("router")
    if endpoint is None or router is None:
        return None
    hit = _by_endpoint.get(id(endpoint))
    if hit is not None and hit[0] is endpoint:
        return hit[1]
    found = {
        t
        for r, t in _walk(getattr(router, "routes", None) or (), "", 0)
        if getattr(r, "endpoint", None) is endpoint and not getattr(r, "routes", None)
    }
    template = found.pop() if len(found) == 1 else None
    _remember(_by_endpoint, endpoint, template)
    return template


def _remember(cache: dict, key: Any, template: str | None) -> None:
    if len(cache) >= 4096:
        cache.clear()
    cache[id(key)] = (key, template)


def _walk(routes: Any, prefix: str, depth: int) -> Iterator[tuple[Any, str]]:
    """Every route under ``routes`` with its full template (the paths of the Mounts above it prepended)."""
    if depth > 16:
        return
    for route in routes:
        path = getattr(route, "path", None)  # a Host has none and adds nothing
        yield route, prefix + (path if isinstance(path, str) else "")
        children = getattr(route, "routes", None)
        if children:
            yield from _walk(children, prefix + (path if isinstance(path, str) else ""), depth + 1)


class StatsdASGIMiddleware(MiddlewareBase):
    """Wraps an ASGI 3 app so that every HTTP request pushes ``request_count``,
    ``request_latency_seconds`` and ``request_exceptions`` (plus the opt-in in-flight and info gauges).

    Options (keyword-only), as for :class:`statsd_instrument.wsgi.StatsdMiddleware`: ``client`` (default
    :data:`statsd_instrument.statsd`), ``service``, ``endpoint`` (resolver ``fn(scope)``, see the module
    docstring), ``exclude_paths`` (prefixes and ``re.compile`` patterns, on ``scope["path"]``),
    ``exclude`` (``predicate(scope) -> bool``), ``tags`` (static), ``request_tags`` (``fn(scope) -> dict``),
    ``in_flight``, ``version``.

    >>> import asyncio
    >>> from statsd_instrument import statsd
    >>> from statsd_instrument.testing import capture
    >>> async def boom(scope, receive, send):
    ...     raise ZeroDivisionError
    >>> app = StatsdASGIMiddleware(boom, service="demo", client=statsd, exclude_paths=["/health"])
    >>> with capture() as cap:
    ...     asyncio.run(app({"type": "http", "method": "GET", "path": "/x"}, None, None))
    Traceback (most recent call last):
    ...
    ZeroDivisionError
    >>> cap.assert_emitted("request_exceptions", tags={"exception": "ZeroDivisionError"}).value
    1.0
    >>> cap.assert_emitted("request_count").tags["status"]
    '500'
    """

    path_key = "path"
    method_key = "method"
    default_service = "asgi"
    default_endpoint = staticmethod(scope_endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or (self.filtering and self.skipped(scope)):
            await self.app(scope, receive, send)
            return
        start = _clock()
        noting = _new_send(_SendNotingTheEnd)  # no __init__ call: the fields are set here, once per request
        noting.send = send
        noting.status = 500  # what the server answers if the app never starts a response
        noting.end = 0.0
        noting.trailers = False
        recorder = self.recorder
        if recorder.in_flight:
            recorder.started()
        try:
            await self.app(scope, receive, noting)
        except BaseException as error:
            self.finish(scope, (noting.end or _clock()) - start, noting.status, type(error).__name__)
            raise
        self.finish(scope, (noting.end or _clock()) - start, noting.status, None)


class _SendNotingTheEnd:
    """The ``send`` the app gets: notes the status sent and when the last message of the response was
    handed to the server (``end``, 0.0 while it is not), then returns the server's ``send`` awaitable. A
    plain callable, not a coroutine function: no coroutine per message."""

    __slots__ = ("end", "send", "status", "trailers")

    send: Send
    status: object
    end: float
    trailers: bool

    def __call__(self, message: Message) -> Awaitable[None]:
        kind = message.get("type")
        if kind == _START:
            self.status = message.get("status", 0)
            self.trailers = bool(message.get("trailers", False))
        elif kind == _BODY:
            if not self.trailers and not message.get("more_body", False):
                self.end = _clock()
        elif kind == _TRAILERS:
            if not message.get("more_trailers", False):
                self.end = _clock()
        elif kind == _PATHSEND and not self.trailers:
            self.end = _clock()
        return self.send(message)


_new_send = object.__new__
