"""statsd_instrument.middleware: the WSGI and ASGI middlewares share one constructor and one end of a request,
so the same request, with the same keys set by the app, sends the same metrics through either."""

from __future__ import annotations

import asyncio

import pytest

from statsd_instrument import statsd
from statsd_instrument.asgi import StatsdASGIMiddleware
from statsd_instrument.http_metrics import ENDPOINT_KEY, EXCEPTION_KEY, SKIP_KEY, TAGS_KEY
from statsd_instrument.testing import capture
from statsd_instrument.wsgi import StatsdMiddleware


def run_wsgi(keys: dict, **options) -> None:
    def app(environ, start_response):
        environ.update(keys)
        start_response("404 Not Found", [])
        return [b"x"]

    body = StatsdMiddleware(app, client=statsd, **options)(
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}, _ignore
    )
    list(body)
    body.close()


def run_asgi(keys: dict, **options) -> None:
    async def app(scope, receive, send):
        scope.update(keys)
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})

    async def send(message):
        pass

    middleware = StatsdASGIMiddleware(app, client=statsd, **options)
    asyncio.run(middleware({"type": "http", "method": "GET", "path": "/x"}, None, send))


def _ignore(*args):
    return None


@pytest.mark.parametrize("run", [run_wsgi, run_asgi], ids=["wsgi", "asgi"])
def test_the_keys_an_app_sets_end_the_request_the_same_way(run):
    keys = {ENDPOINT_KEY: "/user/<id>", EXCEPTION_KEY: "KeyError", TAGS_KEY: ["tenant:acme"]}
    with capture() as cap:
        run(keys, service="shop", endpoint=lambda request: request.get(ENDPOINT_KEY))
    count = cap.assert_emitted("request_count", type="c")
    assert count.tags == {
        "service": "shop",
        "method": "GET",
        "endpoint": "/user/<id>",
        "status": "404",
        "tenant": "acme",
    }
    assert cap.assert_emitted("request_exceptions").tags["exception"] == "KeyError"
    with capture() as cap:
        run({SKIP_KEY: True})
    assert cap.records == []


@pytest.mark.parametrize("run", [run_wsgi, run_asgi], ids=["wsgi", "asgi"])
def test_defaults_and_a_resolver_answering_no_string(run):
    # the service defaults to the middleware's kind; an endpoint that is no str is unmatched, never its repr
    with capture() as cap:
        run({}, endpoint=lambda request: object())
    tags = cap.assert_emitted("request_count").tags
    assert tags["service"] == ("wsgi" if run is run_wsgi else "asgi")
    assert tags["endpoint"] == "<unmatched>"
