"""The WSGI middleware: the Flask extension's metrics for any WSGI app, over a real client and UDP socket."""

from __future__ import annotations

import re
import time
import wsgiref.util

import pytest

from statsd_instrument.wsgi import EXCEPTION_KEY, PathTemplates, StatsdMiddleware
from tests.pushed import Pushed, client_for


@pytest.fixture
def client(udp_collector):
    with client_for(udp_collector) as c:
        yield c


@pytest.fixture
def pushed(udp_collector):
    return Pushed(udp_collector)


def routes(environ, start_response):
    """A bare WSGI app: /user/<id> answers, /boom raises, /handled answers 500 naming its exception."""
    path = environ["PATH_INFO"]
    if path == "/boom":
        raise ZeroDivisionError
    if path == "/handled":
        environ[EXCEPTION_KEY] = "ValueError"
        start_response("500 INTERNAL SERVER ERROR", [])
        return [b"sorry"]
    if path == "/stream":
        return streamed(start_response)
    if path.startswith("/user/"):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"user"]
    start_response("404 NOT FOUND", [])
    return [b"not found"]


def streamed(start_response):
    start_response("200 OK", [])
    yield b"a"
    yield b"b"
    raise RuntimeError("connection to the backend lost")


def call(app, path: str, method: str = "GET", **environ) -> tuple[str, bytes]:
    """Serve one request like a WSGI server: call, iterate the body, close it. Returns (status, body)."""
    env = {"PATH_INFO": path, "REQUEST_METHOD": method, **environ}
    wsgiref.util.setup_testing_defaults(env)
    status: list[str] = []
    body = app(env, lambda s, headers, exc_info=None: status.append(s))
    try:
        data = b"".join(body)
    finally:
        if hasattr(body, "close"):
            body.close()
    return status[0], data


def make(client, **options) -> StatsdMiddleware:
    return StatsdMiddleware(
        routes, client=client, service="bare", endpoint=PathTemplates(["/user/<int:id>", "/boom"]), **options
    )


def test_counts_and_times_requests_by_template_with_bounded_labels(client, pushed):
    app = make(client)
    assert call(app, "/user/1") == ("200 OK", b"user")
    call(app, "/user/2", method="PURGE")
    call(app, "/random/path/123")
    records = pushed.wait(6)
    labels = [(n, t, tags["method"], tags["endpoint"], tags["status"]) for n, _, t, tags in records]
    assert labels == [
        ("request_count", "c", "GET", "/user/<int:id>", "200"),
        ("request_latency_seconds", "ms", "GET", "/user/<int:id>", "200"),
        ("request_count", "c", "OTHER", "/user/<int:id>", "200"),
        ("request_latency_seconds", "ms", "OTHER", "/user/<int:id>", "200"),
        ("request_count", "c", "GET", "<unmatched>", "404"),
        ("request_latency_seconds", "ms", "GET", "<unmatched>", "404"),
    ]
    assert all(tags["service"] == "bare" for *_, tags in records)


def test_exception_escaping_the_app_is_a_500_and_is_reraised(client, pushed):
    app = make(client)
    with pytest.raises(ZeroDivisionError):
        call(app, "/boom")
    records = pushed.wait(3)
    assert [
        (n, tags["endpoint"], tags.get("status"), tags.get("exception")) for n, _, _, tags in records
    ] == [
        ("request_count", "/boom", "500", None),
        ("request_latency_seconds", "/boom", "500", None),
        ("request_exceptions", "/boom", None, "ZeroDivisionError"),
    ]


def test_exception_answered_by_the_app_is_named_through_environ(client, pushed):
    app = StatsdMiddleware(routes, client=client, service="bare")
    assert call(app, "/handled")[0].startswith("500")
    records = pushed.wait(3)
    assert records[2][0] == "request_exceptions"
    assert records[2][3] == {
        "service": "bare",
        "method": "GET",
        "endpoint": "<unmatched>",
        "exception": "ValueError",
    }


def test_body_is_timed_until_closed_and_failures_while_streaming_count(client, pushed, udp_collector):
    app = make(client)
    env = {"PATH_INFO": "/stream", "REQUEST_METHOD": "GET"}
    wsgiref.util.setup_testing_defaults(env)
    body = app(env, lambda *a: None)
    chunks = iter(body)
    assert next(chunks) == b"a"
    time.sleep(0.1)
    assert udp_collector.lines() == []  # nothing until the server has closed the body
    assert next(chunks) == b"b"
    with pytest.raises(RuntimeError):
        next(chunks)
    body.close()
    records = pushed.wait(3)
    assert [(n, tags.get("status"), tags.get("exception")) for n, _, _, tags in records] == [
        ("request_count", "200", None),  # the status line already sent stays what the client saw
        ("request_latency_seconds", "200", None),
        ("request_exceptions", None, "RuntimeError"),
    ]


def test_app_can_name_its_endpoint_through_environ(client, pushed):
    def app_with_router(environ, start_response):
        environ["statsd_instrument.endpoint"] = "/orders/{id}"
        start_response("201 CREATED", [])
        return [b""]

    call(StatsdMiddleware(app_with_router, client=client), "/orders/77", method="POST")
    assert pushed.named("request_count", 2)[0][2] == {
        "service": "wsgi",
        "method": "POST",
        "endpoint": "/orders/{id}",
        "status": "201",
    }


def test_exclusions_and_tags(client, pushed):
    app = make(
        client,
        exclude_paths=["/static/", re.compile(r"^/health$")],
        exclude=lambda environ: environ.get("HTTP_USER_AGENT") == "probe",
        tags={"region": "eu"},
        request_tags=lambda environ: {"tenant": environ.get("HTTP_X_TENANT", "none")},
    )
    call(app, "/static/a.css")
    call(app, "/health")
    call(app, "/user/1", HTTP_USER_AGENT="probe")
    call(app, "/user/2", HTTP_X_TENANT="acme")
    records = pushed.wait(2)
    assert len(records) == 2
    assert records[0][3] == {
        "service": "bare",
        "method": "GET",
        "endpoint": "/user/<int:id>",
        "status": "200",
        "region": "eu",
        "tenant": "acme",
    }


class BrokenClient:
    """A client whose every call fails."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise OSError(f"{name} failed")

        return fail


def test_failing_metrics_never_break_the_app(caplog):
    app = StatsdMiddleware(
        routes,
        client=BrokenClient(),
        in_flight=True,
        version="1",
        endpoint=lambda environ: 1 / 0,
        request_tags=lambda environ: {}["x"],
        exclude=lambda environ: {}["y"],
    )
    assert call(app, "/user/1") == ("200 OK", b"user")
    assert call(app, "/nope")[0].startswith("404")
    assert "statsd_instrument" in caplog.text


def test_in_flight_gauge_and_one_datagram_per_request(client, udp_collector):
    seen_during: list[str] = []

    def app(environ, start_response):
        seen_during.extend(udp_collector.wait_for_lines(1))
        start_response("200 OK", [])
        return [b"ok"]

    wrapped = StatsdMiddleware(app, client=client, service="svc", in_flight=True)
    call(wrapped, "/x")
    assert seen_during == ["request_in_flight:+1|g|#service:svc"]
    deadline = time.monotonic() + 5
    while len(udp_collector.datagrams) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    datagrams = [d.decode().split("\n") for d in udp_collector.datagrams]
    assert [[line.split(":", 1)[0] for line in d] for d in datagrams] == [
        ["request_in_flight"],
        ["request_count", "request_latency_seconds", "request_in_flight"],
    ]
    assert datagrams[1][2] == "request_in_flight:-1|g|#service:svc"


@pytest.mark.parametrize(
    ("templates", "message"),
    [("/user/<id>", "expected a list"), (["user/<id>"], "starting with '/'"), ([None], "None")],
)
def test_bad_route_templates_are_rejected_naming_the_value(templates, message):
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        PathTemplates(templates)


def test_bad_options_name_the_option():
    with pytest.raises(TypeError, match=r"exclude_paths: .*42"):
        StatsdMiddleware(routes, exclude_paths=[42])
    with pytest.raises(ValueError, match=r"tags=.*'le'"):
        StatsdMiddleware(routes, tags={"le": "x"})
    with pytest.raises(TypeError, match=r"endpoint: .*'nope'"):
        StatsdMiddleware(routes, endpoint="nope")
