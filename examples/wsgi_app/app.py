"""A bare WSGI app (no framework) wrapped in StatsdMiddleware: the same routes as the Flask example.

``/test/`` answers ``rest``; ``/test1/`` raises ``ZeroDivisionError``, answered as a 500 by the app's own
error handling, which names the exception for the metrics in ``environ["statsd_instrument.exception"]``;
``/user/<id>`` is parametrised; ``/health`` is excluded. Run: ``uwsgi --ini uwsgi.ini --http-socket :8000``.
"""

from __future__ import annotations

import os

from statsd_instrument.wsgi import EXCEPTION_KEY, PathTemplates, StatsdMiddleware

ROUTES = ["/test/", "/test1/", "/user/<int:user_id>", "/health"]
METHODS = ("GET", "HEAD")


def bare_app(environ, start_response):
    """The routes above; an exception is answered as a 500 (bare uwsgi would just drop the connection)."""
    try:
        return routes(environ, start_response)
    except Exception as error:
        environ[EXCEPTION_KEY] = type(error).__name__
        start_response("500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")])
        return [b"internal error"]


def routes(environ, start_response):
    """The routes themselves."""
    path = environ.get("PATH_INFO", "")
    if path == "/test1/":
        1 / 0  # noqa: B018 - the article's deliberate failure
    if path in ("/test/", "/health") or (path.startswith("/user/") and path[6:].isdigit()):
        if environ.get("REQUEST_METHOD") not in METHODS:
            start_response("405 METHOD NOT ALLOWED", [("Content-Type", "text/plain")])
            return [b"method not allowed"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"rest" if path == "/test/" else b"ok"]
    start_response("404 NOT FOUND", [("Content-Type", "text/plain")])
    return [b"not found"]


app = StatsdMiddleware(
    bare_app,
    service=os.environ.get("STATSD_SERVICE", "wsgi_app"),
    endpoint=PathTemplates(ROUTES),
    exclude_paths=["/health"],
)
