"""The capture helpers and the pytest fixture: parsed records, nothing sent, failures print every record."""

from __future__ import annotations

import pytest

from statsd_instrument import Client, statsd
from statsd_instrument.testing import Capture, Record, capture


def test_fixture_captures_parsed_records(statsd_capture):
    statsd.increment("orders_total", tags={"status": "paid"})
    statsd.gauge("temperature", -2.5)
    assert statsd_capture.records == [
        Record("orders_total", "c", 1.0, {"status": "paid"}, 1.0),
        Record("temperature", "g", 0.0, {}, 1.0),
        Record("temperature", "g", -2.5, {}, 1.0),
    ]


def test_capture_sends_nothing_to_the_server_the_client_is_configured_for(udp_collector):
    client = Client(host="127.0.0.1", port=udp_collector.port)
    try:
        with capture(client) as cap:
            client.increment("inside")
            client.flush()
        client.increment("outside")  # the control: the same client sends once the block is over
        client.flush()
        assert udp_collector.wait_for_lines(1) == ["outside:1|c"]
        assert cap.lines == ["inside:1|c"]
    finally:
        client.close()


def test_fixture_runs_in_strict_mode(statsd_capture):
    with pytest.raises(ValueError, match="quantile"):
        statsd.histogram("h", 1, tags={"quantile": "0.5"})


def test_a_failed_assertion_prints_every_record():
    cap = Capture(["a:1|c|#k:v", "b:2.5|ms"])
    with pytest.raises(AssertionError) as info:
        cap.assert_emitted("a", tags={"k": "other"})
    text = str(info.value)
    assert "a c 1 {'k': 'v'}" in text and "b ms 2.5" in text


def test_assert_emitted_counts_times_and_total_sums():
    cap = Capture(["a:1|c", "a:2|c", "b:1|c"])
    cap.assert_emitted("a", times=2)
    with pytest.raises(AssertionError, match="expected 'a' 3 time"):
        cap.assert_emitted("a", times=3)
    assert cap.total("a") == 3.0
    with pytest.raises(AssertionError, match="unexpected record 'b'"):
        cap.assert_not_emitted("b")


def test_assert_consistent_passes_for_the_request_metrics_of_a_real_app(statsd_capture):
    from flask import Flask

    from statsd_instrument.flask import StatsdInstrument

    app = Flask("shop")
    StatsdInstrument(app, client=statsd, service="shop")
    app.add_url_rule("/user/<int:user_id>", "user", lambda user_id: "ok")
    with app.test_client() as http:
        for path in [f"/user/{user_id}" for user_id in range(100_000, 100_060)] + ["/nowhere"]:
            response = http.get(path)  # ids in the path, never in a label: the endpoint is the template
            response.get_data()
            response.close()  # ends the request, as a server does
    statsd_capture.assert_emitted("request_count", tags={"endpoint": "/user/<int:user_id>"}, times=60)
    statsd_capture.assert_consistent()


def test_assert_consistent_lists_every_type_conflict_collision_and_unbounded_tag():
    lines = ["jobs:1|c", "jobs:2|g", "lat:5|ms", "lat_count:1|c", "go_threads:1|g"]
    lines += [f"hits:1|c|#user:u{n}" for n in range(51)]
    lines += ["orders:1|c|#order_id:1234567", "carts:1|c|#cart:5f0c6bbd-8f3a-4c11-9a0e-2f4a4e7c1d2b"]
    lines += ["pages:1|c|#etag:0123456789abcdef", "pages:1|c|#status:200"]
    with pytest.raises(AssertionError) as info:
        Capture(lines).assert_consistent()
    problems = str(info.value).split("records captured")[0].splitlines()[1:]
    assert len(problems) == 7, problems
    text = "\n".join(problems)
    assert "'jobs' (jobs, gauge) was already sent as a counter" in text
    assert "'lat_count' (lat_count, counter) writes a series that the histogram lat already writes" in text
    assert "exported as go_threads, a metric the exporter serves itself" in text
    assert "hits: tag user has 51 distinct values (more than 50" in text
    assert "order_id='1234567' carries an identifier" in text and "cart='5f0c6bbd" in text
    assert "etag='0123456789abcdef'" in text and "status" not in text
    Capture(lines[5:56]).assert_consistent(max_values=51)  # the limit is the caller's
