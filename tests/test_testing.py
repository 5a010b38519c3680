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
