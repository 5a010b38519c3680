"""The Flask extension: what each kind of request pushes, over a real client and a real UDP socket."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from flask import Blueprint, Flask, Response, abort, request, stream_with_context

from statsd_instrument import Client
from statsd_instrument.flask import StatsdInstrument, exempt
from tests.pushed import Pushed, client_for


@pytest.fixture
def client(udp_collector):
    with client_for(udp_collector) as c:
        yield c


@pytest.fixture
def pushed(udp_collector):
    return Pushed(udp_collector)


def make_app(client, **options) -> Flask:
    app = Flask("shop")
    app.config["STATSD_CLIENT"] = client

    @app.route("/user/<int:user_id>", methods=["GET", "POST"])
    def user(user_id):
        return {"id": user_id}

    @app.route("/boom")
    def boom():
        return 1 / 0

    @app.route("/keyerror")
    def keyerror():
        return {}["missing"]

    @app.route("/forbidden")
    def forbidden():
        abort(403)

    @app.errorhandler(ZeroDivisionError)
    def division(error):
        return "handled", 500

    StatsdInstrument(app, **options)
    return app


def get(app: Flask, path: str, method: str = "GET", **kwargs) -> Response:
    """One request through the test client; closing the response is what ends the request, as in a server."""
    with app.test_client() as c:
        response = c.open(path, method=method, **kwargs)
        response.get_data()
        response.close()
    return response


def test_counts_and_times_each_request_by_route_template(client, pushed):
    app = make_app(client)
    assert get(app, "/user/1").status_code == 200
    assert get(app, "/user/2").status_code == 200
    counts = pushed.named("request_count", 4)
    expected = {"service": "shop", "method": "GET", "endpoint": "/user/<int:user_id>", "status": "200"}
    assert counts == [(1.0, "c", expected), (1.0, "c", expected)]
    latencies = pushed.named("request_latency_seconds", 4)
    assert [(t, tags) for _, t, tags in latencies] == [("ms", expected), ("ms", expected)]
    assert all(v > 0 for v, _, _ in latencies)


def test_app_factory_and_blueprints_share_one_extension_object(client, pushed):
    ext = StatsdInstrument(client=client)
    api = Blueprint("api", __name__, url_prefix="/api/v1")

    @api.route("/items/<slug>")
    def item(slug):
        return slug

    def create_app(service: str) -> Flask:
        app = Flask(service)
        app.register_blueprint(api)
        ext.init_app(app)
        return app

    first, second = create_app("first"), create_app("second")
    assert not any(isinstance(v, Flask) for v in vars(ext).values())  # nothing about an app kept on ext
    get(first, "/api/v1/items/a")
    get(second, "/api/v1/items/b")
    counts = pushed.named("request_count", 4)
    assert [(tags["service"], tags["endpoint"]) for _, _, tags in counts] == [
        ("first", "/api/v1/items/<slug>"),
        ("second", "/api/v1/items/<slug>"),
    ]
    with pytest.raises(RuntimeError, match="already initialised"):
        ext.init_app(first)


def test_async_view_is_counted_and_timed(client, pushed):
    app = make_app(client)

    @app.route("/slow-async")
    async def slow_async():
        await asyncio.sleep(0)
        return "done"

    assert get(app, "/slow-async").data == b"done"
    names = [(n, tags["endpoint"], tags["status"]) for n, _, _, tags in pushed.wait(2)]
    assert names == [
        ("request_count", "/slow-async", "200"),
        ("request_latency_seconds", "/slow-async", "200"),
    ]


def test_streamed_response_is_timed_until_fully_sent(client, pushed, udp_collector):
    app = make_app(client)
    marks: dict[str, float] = {}

    @app.route("/stream")
    def stream():
        marks["view"] = time.perf_counter()

        def body():
            for chunk in (b"a", b"b", b"c"):
                time.sleep(0.02)
                yield chunk
            marks["sent"] = time.perf_counter()

        return Response(stream_with_context(body()))

    with app.test_client() as c:
        response = c.get("/stream", buffered=False)
        first = next(iter(response.response))
        assert first == b"a"
        time.sleep(0.1)
        assert udp_collector.lines() == []  # nothing pushed while the body is still being sent
        assert b"".join(response.response) == b"bc"
        response.close()
    (latency_ms, _, tags) = pushed.named("request_latency_seconds", 2)[0]
    assert tags["endpoint"] == "/stream" and tags["status"] == "200"
    assert latency_ms >= (marks["sent"] - marks["view"]) * 1000


def test_exception_answered_by_error_handler_is_counted_with_its_class(client, pushed):
    app = make_app(client)
    assert get(app, "/boom").status_code == 500
    records = pushed.wait(3)
    assert [(n, tags.get("status"), tags.get("exception")) for n, _, _, tags in records] == [
        ("request_count", "500", None),
        ("request_latency_seconds", "500", None),
        ("request_exceptions", None, "ZeroDivisionError"),
    ]
    assert records[2][3] == {
        "service": "shop",
        "method": "GET",
        "endpoint": "/boom",
        "exception": "ZeroDivisionError",
    }


@pytest.mark.parametrize("propagate", [False, True])
def test_unhandled_exception_is_a_500_with_its_class(client, pushed, propagate):
    app = make_app(client)
    app.config["PROPAGATE_EXCEPTIONS"] = propagate  # True: the test client re-raises, no response object
    if propagate:
        with pytest.raises(KeyError):
            get(app, "/keyerror")
    else:
        assert get(app, "/keyerror").status_code == 500
    records = pushed.wait(3)
    assert [
        (n, tags["endpoint"], tags.get("status"), tags.get("exception")) for n, _, _, tags in records
    ] == [
        ("request_count", "/keyerror", "500", None),
        ("request_latency_seconds", "/keyerror", "500", None),
        ("request_exceptions", "/keyerror", None, "KeyError"),
    ]


def test_abort_is_counted_by_status_not_as_an_exception(client, pushed, udp_collector):
    app = make_app(client)
    assert get(app, "/forbidden").status_code == 403
    get(app, "/user/1")  # a later request, so that anything the first one sent has arrived
    records = pushed.wait(4)
    assert [(n, tags["endpoint"], tags["status"]) for n, _, _, tags in records] == [
        ("request_count", "/forbidden", "403"),
        ("request_latency_seconds", "/forbidden", "403"),
        ("request_count", "/user/<int:user_id>", "200"),
        ("request_latency_seconds", "/user/<int:user_id>", "200"),
    ]


def test_unknown_paths_and_methods_share_fixed_labels(client, pushed):
    app = make_app(client)
    for i in range(5):
        assert get(app, f"/wp-admin/{i}.php").status_code == 404
    assert get(app, "/user/7", method="BREW").status_code == 405
    assert get(app, "/user/7", method="DELETE").status_code == 405
    labels = {
        (tags["method"], tags["endpoint"], tags["status"]) for _, _, tags in pushed.named("request_count", 14)
    }
    assert labels == {
        ("GET", "<unmatched>", "404"),
        ("OTHER", "/user/<int:user_id>", "405"),  # a 405 still names the route that exists
        ("DELETE", "/user/<int:user_id>", "405"),
    }


def test_excluded_paths_predicate_and_exempt_views_send_nothing(client, pushed):
    app = make_app(
        client,
        exclude_paths=["/static/", re.compile(r"^/health/?$")],
        exclude=lambda request: request.headers.get("User-Agent") == "scanner",
    )

    @app.route("/internal")
    @exempt
    def internal():
        return "quiet"

    get(app, "/static/app.js")
    get(app, "/health")
    get(app, "/user/1", headers={"User-Agent": "scanner"})
    get(app, "/internal")
    get(app, "/user/2")  # measured: proves the collector was listening all along
    assert [(n, tags["endpoint"]) for n, _, _, tags in pushed.wait(2)] == [
        ("request_count", "/user/<int:user_id>"),
        ("request_latency_seconds", "/user/<int:user_id>"),
    ]


def test_endpoint_callable_and_extra_tags(client, pushed):
    app = make_app(
        client,
        endpoint=lambda request: "user" if request.path.startswith("/user/") else None,
        tags={"region": "eu-west"},
        request_tags=lambda request: {"tenant": request.headers.get("X-Tenant", "none")},
    )
    get(app, "/user/3", headers={"X-Tenant": "acme"})
    get(app, "/boom")
    records = pushed.wait(5)
    assert records[0][3] == {
        "service": "shop",
        "method": "GET",
        "endpoint": "user",
        "status": "200",
        "region": "eu-west",
        "tenant": "acme",
    }
    assert records[4][0] == "request_exceptions"
    assert records[4][3]["endpoint"] == "/boom" and records[4][3]["tenant"] == "none"


def test_info_metric_carries_the_app_version(client, pushed):
    app = make_app(client, version="2.4.1")
    get(app, "/user/1")
    get(app, "/user/2")  # once per process (and again every minute), not once per request
    info = pushed.named("app_info", 4)
    assert info == [(1.0, "g", {"service": "shop", "version": "2.4.1"})]


def test_settings_come_from_config_before_constructor_and_environment(client, pushed, monkeypatch):
    monkeypatch.setenv("STATSD_SERVICE", "from-env")
    env_app = make_app(client)
    config_app = Flask("x")
    config_app.config.update(STATSD_CLIENT=client, STATSD_SERVICE="from-config")
    StatsdInstrument(config_app, service="from-constructor")
    ctor_app = Flask("y")
    ctor_app.config["STATSD_CLIENT"] = client
    StatsdInstrument(ctor_app, service="from-constructor")
    services = [
        a.extensions["statsd_instrument"].recorder.service_tag for a in (env_app, config_app, ctor_app)
    ]
    assert services == ["service:from-env", "service:from-config", "service:from-constructor"]


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("STATSD_TAGS", {"le": "1"}, ValueError),
        ("STATSD_TAGS", {"status": "x"}, ValueError),
        ("STATSD_EXCLUDE_PATHS", [42], TypeError),
        ("STATSD_EXCLUDE", "not callable", TypeError),
        ("STATSD_IN_FLIGHT", "maybe", ValueError),
    ],
)
def test_bad_settings_raise_naming_the_key_and_value(client, key, value, error):
    app = Flask("bad")
    app.config.update({"STATSD_CLIENT": client, key: value})
    with pytest.raises(error, match=re.escape(key)) as info:
        StatsdInstrument(app)
    assert repr(value if not isinstance(value, (dict, list)) else next(iter(value))) in str(info.value)


class BrokenClient:
    """A client whose every call fails, as a misconfigured or broken transport would."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise OSError(f"{name} failed")

        return fail


def test_failing_metrics_never_break_the_app(caplog):
    app = make_app(
        BrokenClient(),
        in_flight=True,
        version="1",
        endpoint=lambda request: 1 / 0,
        request_tags=lambda request: {}["x"],
        exclude=lambda request: False,
    )
    responses = [get(app, "/user/1"), get(app, "/boom"), get(app, "/nope")]
    assert [r.status_code for r in responses] == [200, 500, 404]
    assert responses[0].json == {"id": 1}
    assert "statsd_instrument" in caplog.text  # the failure is logged, not raised


def test_in_flight_gauge_rises_while_serving_and_falls_after(client, udp_collector):
    app = make_app(client, in_flight=True)
    during: list[str] = []

    @app.route("/work")
    def work():
        during.extend(udp_collector.wait_for_lines(1))  # the +1 left before the view ran
        return "done"

    get(app, "/work")
    assert during == ["request_in_flight:+1|g|#service:shop"]
    lines = udp_collector.wait_for_lines(4)
    assert lines[-1] == "request_in_flight:-1|g|#service:shop"  # with the request's own metrics


def test_requests_of_one_flush_window_leave_merged_in_one_datagram(udp_collector):
    client = Client(host="127.0.0.1", port=udp_collector.port, flush_interval_s=60)
    app = make_app(client, version="3.0")

    @app.route("/order")
    def order():
        client.increment("orders_total")  # the view's own metrics join the window's datagram
        return "ok"

    try:
        get(app, "/boom")
        for _ in range(3):
            get(app, "/order")
        assert client.stats["sent_datagrams"] == 0  # nothing leaves before the window closes
        client.flush()
        udp_collector.wait_for_lines(7)
    finally:
        client.close()
    assert len(udp_collector.datagrams) == 1
    lines = udp_collector.datagrams[0].decode().split("\n")
    assert [line.split("|", 1)[0].split(":")[0] for line in lines] == [
        "request_count",
        "request_latency_seconds",
        "request_exceptions",
        "orders_total",
        "request_count",
        "request_latency_seconds",
        "app_info",  # a gauge's changes wait in its list: the drain folds them after what was buffered
    ]
    assert lines[3] == "orders_total:3|c" and lines[4].startswith("request_count:3|c|#")
    assert len(lines[5].split("|", 1)[0].split(":")) == 4  # three latencies on one multi-value line
    assert client.stats["sent_lines"] == 4 + 3 * 3  # every call counted once


def test_request_answered_by_a_before_request_hook_is_still_measured(client, pushed):
    app = Flask("shop")

    @app.before_request
    def require_token():
        if "X-Token" not in request.headers:
            return "no token", 401
        return None

    @app.route("/private/<name>")
    def private(name):
        return name

    StatsdInstrument(app, client=client)
    assert get(app, "/private/x").status_code == 401
    assert get(app, "/private/y", headers={"X-Token": "t"}).status_code == 200
    assert [(tags["endpoint"], tags["status"]) for _, _, tags in pushed.named("request_count", 4)] == [
        ("/private/<name>", "401"),
        ("/private/<name>", "200"),
    ]


def test_request_callables_run_once_per_request(client, pushed):
    calls: list[str] = []

    def tags(request):
        calls.append(request.path)
        return {"tenant": "acme"}

    app = make_app(client, request_tags=tags)
    get(app, "/user/1")
    get(app, "/boom")  # answered by an error handler
    assert calls == ["/user/1", "/boom"]
    assert [tags["tenant"] for _, _, tags in pushed.named("request_count", 5)] == ["acme", "acme"]
