"""A Starlette app wrapped in StatsdASGIMiddleware: the routes of the Flask example, plus a streamed one.

``/test/`` answers ``rest``; ``/test1/`` raises ``ZeroDivisionError`` (Starlette answers a 500 and re-raises,
so the exception is counted); ``/user/{user_id:int}`` is parametrised; ``/stream/`` streams
``STREAM_CHUNKS`` chunks ``STREAM_PAUSE_S`` seconds apart (default 5 x 0.05 s); ``/health`` is excluded.
The client sends to ``STATSD_HOST:STATSD_PORT``. Run: ``uvicorn examples.asgi_app.app:app --port 8000``.
"""

from __future__ import annotations

import asyncio
import os

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from statsd_instrument.asgi import StatsdASGIMiddleware

STREAM_CHUNKS = int(os.environ.get("STREAM_CHUNKS", "5"))
STREAM_PAUSE_S = float(os.environ.get("STREAM_PAUSE_S", "0.05"))


async def rest(request):
    """The article's happy route."""
    return PlainTextResponse("rest")


async def fail(request):
    """The article's deliberate failure."""
    return PlainTextResponse(str(1 / 0))


async def user(request):
    """A parametrised route: its label is the template, never the id."""
    return PlainTextResponse(f"user {request.path_params['user_id']}")


async def stream(request):
    """A body sent in chunks with pauses: the request is timed until the last chunk has been sent."""

    async def chunks():
        for i in range(STREAM_CHUNKS):
            await asyncio.sleep(STREAM_PAUSE_S)
            yield f"chunk {i}\n".encode()

    return StreamingResponse(chunks(), media_type="text/plain")


async def health(request):
    """Excluded from the metrics."""
    return PlainTextResponse("ok")


starlette_app = Starlette(
    routes=[
        Route("/test/", rest),
        Route("/test1/", fail),
        Route("/user/{user_id:int}", user),
        Route("/stream/", stream),
        Route("/health", health),
    ]
)

app = StatsdASGIMiddleware(
    starlette_app,
    service=os.environ.get("STATSD_SERVICE", "asgi_app"),
    exclude_paths=["/health"],
    in_flight=os.environ.get("STATSD_IN_FLIGHT", "") == "1",
)
