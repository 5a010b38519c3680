"""StatsdASGIMiddleware: exact counts over real uvicorn (2 workers) serving Starlette, and its edge cases.

End to end: a known mix of requests to the example Starlette app (parametrised route, a route that raises,
a streamed response, random unknown paths and methods, an excluded /health) goes through real uvicorn
workers, the embedded exporter and the shipped mapping; counts per (method, endpoint, status) must equal
what the HTTP client saw. The unit tests drive the middleware directly with hand-written ASGI apps.
"""

from __future__ import annotations

import asyncio
import collections
import random
import uuid

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from statsd_instrument import Client, asgi
from statsd_instrument.asgi import StatsdASGIMiddleware
from statsd_instrument.exporter import Exporter
from statsd_instrument.testing import capture
from tests.helpers import REPO, ManagedProcess, free_port, python_bin, wait_for_port
from tests.test_e2e_uwsgi_flask import STANDARD, UNMATCHED, by_labels, drive, settled_scrape

SERVICE = "asgi_e2e"
STREAM_CHUNKS, STREAM_PAUSE_S = 6, 0.05  # a streamed response takes at least 0.3 s to send


def plan(rng: random.Random) -> list[tuple[str, str, str]]:
    """(method, path, expected endpoint label) for every measured request, shuffled."""
    requests = [("GET", "/test/", "/test/")] * 300 + [("GET", "/test1/", "/test1/")] * 100
    requests += [("GET", f"/user/{rng.randint(1, 10**6)}", "/user/{user_id:int}") for _ in range(100)]
    requests += [("GET", "/user/bob", UNMATCHED)] * 20  # the int convertor does not match: no route
    requests += [("GET", f"/{uuid.UUID(int=rng.getrandbits(128)).hex}/x", UNMATCHED) for _ in range(50)]
    requests += [("GET", "/stream/", "/stream/")] * 12
    for _ in range(60):
        if rng.random() < 0.5:
            method = rng.choice(STANDARD)
        else:  # a random token: must collapse into one "OTHER" label
            method = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(3, 12)))
        requests.append((method, "/test/", "/test/"))  # 405 for all but GET and HEAD: the template stays
    rng.shuffle(requests)
    return requests


@pytest.mark.e2e
def test_counts_per_route_are_exact_under_two_uvicorn_workers(tmp_path):
    requests = plan(random.Random(4321))
    health = [("GET", "/health", "/health")] * 20  # excluded: sends nothing
    with Exporter(REPO / "exporter-mapping.yml", udp="127.0.0.1:0", web="127.0.0.1:0") as exporter:
        port = free_port()
        server = ManagedProcess(
            [
                python_bin("uvicorn"),
                "app:app",
                "--app-dir",
                str(REPO / "examples" / "asgi_app"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "2",
                "--no-access-log",
            ],
            env={
                "STATSD_HOST": "127.0.0.1",
                "STATSD_PORT": str(exporter.udp_port),
                "STATSD_SERVICE": SERVICE,
                "STATSD_IN_FLIGHT": "1",
                "STREAM_CHUNKS": str(STREAM_CHUNKS),
                "STREAM_PAUSE_S": str(STREAM_PAUSE_S),
            },
            log=tmp_path / "uvicorn.log",
        )
        try:
            wait_for_port(port, proc=server.proc)
            seen = drive(port, requests + health)
        finally:
            server.stop()
        samples = settled_scrape(f"http://127.0.0.1:{exporter.web_port}/metrics", total=len(requests))

    assert seen[("GET", "/health", "200")] == 20
    del seen[("GET", "/health", "200")]
    assert seen[("GET", "/test1/", "500")] == 100
    assert seen[("GET", UNMATCHED, "404")] == 70
    assert seen[("GET", "/stream/", "200")] == 12
    assert any(status == "405" for _, _, status in seen)

    route = ("method", "endpoint", "status")
    counted = by_labels(samples, "http_requests_total", *route)
    assert counted == seen  # exact per (method, endpoint, status): nothing lost, nothing doubled
    assert set(by_labels(samples, "http_requests_total", "service")) == {(SERVICE,)}

    # bounded label values: route templates and one unmatched value; standard methods or OTHER
    endpoints = {e for _, e, _ in counted}
    assert endpoints == {"/test/", "/test1/", "/user/{user_id:int}", "/stream/", UNMATCHED}
    methods = {m for m, _, _ in counted}
    assert methods <= set(STANDARD) | {"OTHER"} and "OTHER" in methods

    # every request timed; a streamed response is timed until its last chunk was sent
    assert by_labels(samples, "http_request_duration_seconds_count", *route) == seen
    buckets = by_labels(samples, "http_request_duration_seconds_bucket", "endpoint", "le")
    assert buckets[("/stream/", "+Inf")] == 12
    assert buckets[("/stream/", "0.25")] == 0  # none shorter than the 0.3 s the stream takes to send
    stream_s = by_labels(samples, "http_request_duration_seconds_sum", "endpoint")[("/stream/",)]
    assert stream_s >= 12 * STREAM_CHUNKS * STREAM_PAUSE_S * 0.95

    exceptions = by_labels(samples, "http_request_exceptions_total", "endpoint", "exception")
    assert exceptions == {("/test1/", "ZeroDivisionError"): 100}
    # +1 at every start, -1 at every end, from both workers: back to 0 once all is served
    assert by_labels(samples, "http_requests_in_flight", "service") == {(SERVICE,): 0}


# --- the middleware driven directly -------------------------------------------------------------------


class Server:
    """The server side of one ASGI call: records what the app sent."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: dict) -> None:
        self.sent.append(message)


def http_scope(path: str = "/x", method: str = "GET") -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "method": method, "path": path, "headers": []}


def call(app, scope: dict) -> Server:
    server = Server()
    asyncio.run(app(scope, server.receive, server.send))
    return server


async def ok_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_lifespan_and_websocket_scopes_pass_through_untouched():
    calls = []

    async def app(scope, receive, send):
        calls.append((scope, receive, send))

    server = Server()
    middleware = StatsdASGIMiddleware(app)
    with capture() as cap:
        for kind in ("lifespan", "websocket"):
            scope = {"type": kind, "asgi": {"version": "3.0"}, "path": "/ws"}
            asyncio.run(middleware(scope, server.receive, server.send))
            assert calls[-1] == (scope, server.receive, server.send)  # the very same objects
            assert calls[-1][0] == {"type": kind, "asgi": {"version": "3.0"}, "path": "/ws"}
    assert cap.lines == []


def test_app_raising_before_the_response_started_counts_a_500_with_its_exception():
    async def app(scope, receive, send):
        raise KeyError("boom")

    with capture() as cap, pytest.raises(KeyError):
        call(StatsdASGIMiddleware(app, service="s"), http_scope())
    count = cap.assert_emitted("request_count", value=1)
    assert count.tags == {"service": "s", "method": "GET", "endpoint": UNMATCHED, "status": "500"}
    assert cap.assert_emitted("request_exceptions").tags["exception"] == "KeyError"
    assert len(cap.filter("request_latency_seconds")) == 1


def test_app_raising_mid_stream_keeps_the_sent_status_and_counts_the_exception_once():
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise ConnectionResetError

    with capture() as cap, pytest.raises(ConnectionResetError):
        call(StatsdASGIMiddleware(app), http_scope())
    assert cap.assert_emitted("request_count").tags["status"] == "200"
    assert [r.tags["exception"] for r in cap.filter("request_exceptions")] == ["ConnectionResetError"]
    assert len(cap.filter("request_count")) == 1


def test_latency_stops_at_the_last_body_message_and_a_later_exception_still_counts(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(asgi, "_clock", lambda: now[0])
    emitted_during_call = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        now[0] += 0.5  # the stream takes half a second
        await send({"type": "http.response.body", "body": b"b"})
        now[0] += 10.0  # background work after the response: not part of the latency
        emitted_during_call.append(len(cap.lines))
        raise RuntimeError("background task failed")

    with capture() as cap, pytest.raises(RuntimeError):
        call(StatsdASGIMiddleware(app), http_scope())
    assert emitted_during_call == [0]  # the metrics leave when the app's call ends
    assert cap.assert_emitted("request_count").tags["status"] == "201"
    assert cap.assert_emitted("request_latency_seconds").value == 500.0  # milliseconds
    assert cap.assert_emitted("request_exceptions").tags["exception"] == "RuntimeError"


def test_failing_callables_never_break_a_request():
    def bad_tags(scope):
        raise ValueError("tags")

    def bad_endpoint(scope):
        raise ValueError("endpoint")

    def bad_exclude(scope):
        raise ValueError("exclude")

    app = StatsdASGIMiddleware(ok_app, request_tags=bad_tags, endpoint=bad_endpoint, exclude=bad_exclude)
    with capture() as cap:
        server = call(app, http_scope("/user/7"))
    assert [m["type"] for m in server.sent] == ["http.response.start", "http.response.body"]
    assert server.sent[1]["body"] == b"ok"
    tags = cap.assert_emitted("request_count", value=1).tags
    assert tags == {"service": "asgi", "method": "GET", "endpoint": UNMATCHED, "status": "200"}


def test_failing_client_never_breaks_a_request():
    class BrokenClient:
        def __getattr__(self, name):
            raise OSError("network down")

    server = call(StatsdASGIMiddleware(ok_app, client=BrokenClient(), in_flight=True), http_scope())
    assert server.sent[-1] == {"type": "http.response.body", "body": b"ok"}


def test_request_tags_and_excluded_requests():
    app = StatsdASGIMiddleware(
        ok_app,
        request_tags=lambda scope: {"tenant": scope["path"].strip("/")},
        exclude_paths=["/health"],
        exclude=lambda scope: scope["method"] == "OPTIONS",
    )
    with capture() as cap:
        assert call(app, http_scope("/health")).sent[-1]["body"] == b"ok"
        assert call(app, http_scope("/x", method="OPTIONS")).sent[-1]["body"] == b"ok"
        call(app, http_scope("/acme"))
    assert [r.tags["tenant"] for r in cap.filter("request_count")] == ["acme"]


def test_all_metrics_of_a_request_leave_in_one_datagram(udp_collector):
    client = Client(host="127.0.0.1", port=udp_collector.port)

    async def app(scope, receive, send):
        raise ZeroDivisionError

    try:
        with pytest.raises(ZeroDivisionError):
            call(StatsdASGIMiddleware(app, client=client, version="1.2"), http_scope())
        lines = udp_collector.wait_for_lines(4)
    finally:
        client.close()
    names = sorted(line.split(":", 1)[0] for line in lines)
    assert names == ["app_info", "request_count", "request_exceptions", "request_latency_seconds"]
    assert len(udp_collector.datagrams) == 1


def starlette_counts(resolver) -> collections.Counter:
    """(endpoint, status) of requests to a Starlette app with a Mount, a mounted plain app and a shared
    endpoint, resolved by ``resolver``."""

    async def user(request):
        return PlainTextResponse("u")

    async def home(request):
        return PlainTextResponse("h")

    async def shared(request):
        return PlainTextResponse("s")

    inner = Starlette(routes=[Route("/user/{user_id:int}", user)])
    app = Starlette(
        routes=[
            Route("/", home),
            Route("/a", shared),
            Route("/b", shared),  # one endpoint, two routes
            Mount("/api/v1", app=inner.router),
            Mount("/static", app=ok_app),  # an app without routes
        ]
    )
    middleware = StatsdASGIMiddleware(app, endpoint=resolver)
    paths = ["/api/v1/user/42", "/api/v1/user/43", "/", "/api/v1/nope", "/user/1", "/static/x.css", "/a"]
    with capture() as cap:
        for path in paths:
            call(middleware, {**http_scope(path), "query_string": b""})
        call(middleware, {**http_scope("/", method="DELETE"), "query_string": b""})
    return collections.Counter((r.tags["endpoint"], r.tags["status"]) for r in cap.filter("request_count"))


def test_starlette_route_templates_include_mount_prefixes_and_never_raw_paths():
    assert starlette_counts(asgi.scope_endpoint) == {
        ("/api/v1/user/{user_id:int}", "200"): 2,
        ("/", "200"): 1,
        ("/", "405"): 1,
        ("/static", "200"): 1,
        ("/a", "200"): 1,
        (UNMATCHED, "404"): 2,  # also the path that entered the /api/v1 mount and matched nothing there
    }


def test_starlette_without_scope_route_falls_back_to_the_endpoints_only_route():
    # Starlette before 1.10 sets scope["endpoint"] but not scope["route"]: the same requests, resolved so
    def old_starlette(scope):
        return asgi.scope_endpoint({k: v for k, v in scope.items() if k != "route"})

    assert starlette_counts(old_starlette) == {
        ("/api/v1/user/{user_id:int}", "200"): 2,
        ("/", "200"): 1,
        ("/", "405"): 1,
        (UNMATCHED, "200"): 2,  # the mounted plain app; the endpoint two routes share
        (UNMATCHED, "404"): 2,
    }


def test_bad_options_raise_errors_naming_the_field():
    with pytest.raises(TypeError, match=r"exclude_paths: .* got 42"):
        StatsdASGIMiddleware(ok_app, exclude_paths=[42])
    with pytest.raises(TypeError, match="endpoint: expected a callable or None, got 'x'"):
        StatsdASGIMiddleware(ok_app, endpoint="x")
    with pytest.raises(ValueError, match=r"tags=.*: tag key 'status'"):
        StatsdASGIMiddleware(ok_app, tags={"status": "x"})
