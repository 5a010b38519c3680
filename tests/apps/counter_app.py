"""A WSGI app that emits one counter and one timer per request and never calls ``flush()``.

What it emits is only sent by the client's own policies (full datagram, idle flusher, exit), which is what
the end-to-end tests check. It also emits ``e2e_app_loaded`` once at import: under uwsgi (non-lazy) and
gunicorn ``--preload`` that happens in the master, before the workers are forked. The ``X-Worker-Pid``
header names the worker that answered.
"""

from __future__ import annotations

import os
import time

from statsd_instrument import statsd

statsd.increment("e2e_app_loaded")


def application(environ, start_response):
    start = time.perf_counter()
    pid = str(os.getpid())
    statsd.increment("e2e_requests", tags={"pid": pid, "path": environ.get("PATH_INFO", "")})
    statsd.timing("e2e_latency", (time.perf_counter() - start) * 1000.0, tags=["pid:" + pid])
    headers = [("Content-Type", "text/plain"), ("Content-Length", "2"), ("X-Worker-Pid", pid)]
    start_response("200 OK", headers)
    return [b"ok"]
