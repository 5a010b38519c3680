"""A WSGI app whose client only flushes every 60 s: what it emits can only leave at worker exit."""

from __future__ import annotations

import os

from statsd_instrument import configure, statsd

configure(port=int(os.environ["STATSD_PORT"]), flush_interval_s=60)


def application(environ, start_response):
    statsd.increment("exit_app.requests")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
