"""Flask extension: rate, errors and latency per route template, pushed as DogStatsD by every worker.

``StatsdInstrument(app)`` (or ``ext = StatsdInstrument(); ext.init_app(app)`` in an app factory) makes the app
send the request metrics of :mod:`statsd_instrument.http_metrics` for every request, buffered together once
the response has been fully sent (streamed responses included) and sent within the client's flush window.

How: ``init_app`` wraps ``app.wsgi_app`` in a :class:`statsd_instrument.wsgi.StatsdMiddleware` (timing,
status, sending); wraps the app's ``full_dispatch_request`` so that, once Flask's dispatch (hooks, view,
error handlers) is over, the route template, exclusion and per-request tags are written into the request's
WSGI environ, once per request; and notes exceptions on their way into Flask's error handling. The
per-request state lives in that environ rather than in ``g``: ``g`` is torn down before a streamed body
has been sent, and no request hook keeps the cost per request low.

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
from typing import Any, Callable, TypeVar

from flask import Flask, Request, Response, request
from flask import typing as ft
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from statsd_instrument.http_metrics import (
    ENDPOINT_KEY,
    EXCEPTION_KEY,
    SKIP_KEY,
    TAGS_KEY,
    UNMATCHED_ENDPOINT,
    RequestRecorder,
    log,
    tag_list,
)
from statsd_instrument.middleware import PathFilter, check_callable, request_tag_list
from statsd_instrument.validation import Tags, parse_bool, tag_value
from statsd_instrument.wsgi import StatsdMiddleware

EXTENSION_KEY = "statsd_instrument"
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


class _AppInstrumentation:
    """One app's instrumentation: its middleware and what labels its requests (exemptions, endpoint and
    per-request tag functions); lives in ``app.extensions["statsd_instrument"]``."""

    __slots__ = ("_templates", "endpoint_fn", "middleware", "request_tags_fn", "skip", "view_functions")

    def __init__(
        self,
        middleware: StatsdMiddleware,
        view_functions: dict[str, Any],
        skip: Callable[[Any], bool] | None,
        endpoint_fn: Callable[[Any], str | None] | None,
        request_tags_fn: Callable[[Any], Tags] | None,
    ) -> None:
        self.middleware = middleware
        self.view_functions = view_functions
        self.skip = skip
        self.endpoint_fn = endpoint_fn
        self.request_tags_fn = request_tags_fn
        self._templates: dict[str, str] = {}  # rule string -> cleaned tag value (bounded by the url map)

    @property
    def recorder(self) -> RequestRecorder:
        """The recorder the app's requests are sent through."""
        return self.middleware.recorder

    def label(self, req: Request, app: Flask) -> None:
        """Put what only the request context knows into the request's environ, for the middleware."""
        environ = req.environ
        rule = req.url_rule
        endpoint = rule.endpoint if rule is not None else None
        view = self.view_functions.get(endpoint) if endpoint else None
        if (view is not None and getattr(view, _EXEMPT_ATTR, False)) or (
            self.skip is not None and self.skip(req)
        ):
            environ[SKIP_KEY] = True
            return
        if self.endpoint_fn is None and rule is not None:  # endpoint_of's common case, inline
            template = self._templates.get(rule.rule)
            environ[ENDPOINT_KEY] = template if template is not None else self.endpoint_of(req, app)
        else:
            environ[ENDPOINT_KEY] = self.endpoint_of(req, app)
        if self.request_tags_fn is not None:
            environ[TAGS_KEY] = request_tag_list(self.request_tags_fn, req, "STATSD_REQUEST_TAGS")

    def endpoint_of(self, req: Request, app: Flask) -> str:
        """The ``endpoint`` label of ``req``: the route template, bounded when unmatched."""
        if self.endpoint_fn is not None:
            try:
                name = self.endpoint_fn(req)
            except Exception:
                log.warning("statsd_instrument: STATSD_ENDPOINT failed; using the route", exc_info=True)
                name = None
            if name:
                return tag_value(name) or UNMATCHED_ENDPOINT
        rule = req.url_rule
        if rule is None and isinstance(req.routing_exception, MethodNotAllowed):
            rule = _rule_for_other_method(app, req, req.routing_exception)
        if rule is None:
            return UNMATCHED_ENDPOINT
        template = self._templates.get(rule.rule)
        if template is None:
            template = self._templates[rule.rule] = tag_value(rule.rule) or UNMATCHED_ENDPOINT
        return template


def _rule_for_other_method(app: Flask, req: Request, error: MethodNotAllowed) -> Any:
    # A 405 leaves request.url_rule unset; the path did match a route, for another method: name that route.
    try:
        adapter = app.create_url_adapter(req)
        if adapter is None:
            return None
        rule, _ = adapter.match(method=next(iter(error.valid_methods or ["GET"])), return_rule=True)
        return rule
    except Exception:
        return None


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
        in_flight: bool | None = None,
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
        in_flight = self._setting(app, "STATSD_IN_FLIGHT", env=True) or False
        middleware = StatsdMiddleware(
            app.wsgi_app,
            client=_client_for(app, self._setting(app, "STATSD_CLIENT")),
            service=self._setting(app, "STATSD_SERVICE", env=True) or app.name,
            exclude_paths=PathFilter(self._setting(app, "STATSD_EXCLUDE_PATHS"), "STATSD_EXCLUDE_PATHS"),
            tags=tag_list(self._setting(app, "STATSD_TAGS"), "STATSD_TAGS"),
            in_flight=parse_bool(in_flight, "STATSD_IN_FLIGHT"),
            version=self._setting(app, "STATSD_APP_VERSION", env=True),
        )
        instrumentation = _AppInstrumentation(
            middleware,
            app.view_functions,
            check_callable(self._setting(app, "STATSD_EXCLUDE"), "STATSD_EXCLUDE"),
            check_callable(self._setting(app, "STATSD_ENDPOINT"), "STATSD_ENDPOINT"),
            check_callable(self._setting(app, "STATSD_REQUEST_TAGS"), "STATSD_REQUEST_TAGS"),
        )
        app.extensions[EXTENSION_KEY] = instrumentation
        # Timing, status, sending: Flask's documented way to add WSGI middleware, so the clock runs from
        # before the request context is pushed until the server closes the body (streamed ones included).
        app.wsgi_app = middleware  # type: ignore[method-assign]

        # Labels: once per request, when Flask's dispatch (before_request hooks, view, error handlers,
        # after_request hooks) is over and the request context is still there. Wrapping the instance's
        # full_dispatch_request costs one call; an after_request hook cost Flask's per-hook sync check too.
        dispatch = app.full_dispatch_request

        def full_dispatch_request() -> Response:
            try:
                return dispatch()
            finally:
                try:
                    instrumentation.label(request._get_current_object(), app)  # type: ignore[attr-defined]
                except Exception:
                    log.warning("statsd_instrument: labelling the request failed", exc_info=True)

        app.full_dispatch_request = full_dispatch_request  # type: ignore[method-assign]

        # Exceptions answered by an error handler never leave the app: note them on their way in (this runs
        # only when a view or hook raised, so it costs nothing per request).
        original = app.handle_user_exception

        def handle_user_exception(e: Exception) -> HTTPException | ft.ResponseReturnValue:
            if not isinstance(e, HTTPException):  # abort(), 404, 405: already visible as the status
                try:
                    req = request._get_current_object()  # type: ignore[attr-defined]
                    req.environ.setdefault(EXCEPTION_KEY, type(e).__name__)
                except Exception:
                    log.warning("statsd_instrument: noting an exception failed", exc_info=True)
            return original(e)

        app.handle_user_exception = handle_user_exception  # type: ignore[method-assign]

        # A request that failed before dispatch (opening the session, say) still gets its labels.
        handle_exception = app.handle_exception

        def handle_exception_labelled(e: Exception) -> Response:
            try:
                environ = request._get_current_object().environ  # type: ignore[attr-defined]
                if ENDPOINT_KEY not in environ and SKIP_KEY not in environ:
                    instrumentation.label(request._get_current_object(), app)  # type: ignore[attr-defined]
            except Exception:
                log.warning("statsd_instrument: labelling the request failed", exc_info=True)
            return handle_exception(e)

        app.handle_exception = handle_exception_labelled  # type: ignore[method-assign]


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
