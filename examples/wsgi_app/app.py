"""A bare WSGI app (no framework) wrapped in StatsdMiddleware: the same routes as the Flask example.

``/test/`` answers ``rest``; ``/test1/`` raises ``ZeroDivisionError`` (uwsgi answers 500);
``/user/<id>`` is parametrised; ``/health`` is excluded. Run: ``uwsgi --ini uwsgi.ini --http-socket :8000``.
"""

from __future__ import annotations

import os

from statsd_instrument.wsgi import PathTemplates, StatsdMiddleware

ROUTES = ["/test/", "/test1/", "/user/<int:user_id>", "/health"]
METHODS = ("GET", "HEAD")


def bare_app(environ, start_response):
    """The routes above, answered by hand."""
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
