"""The capture helpers and the pytest fixture: parsed records, nothing sent, failures print every record."""

from __future__ import annotations

import pytest

from statsd_instrument import statsd
from statsd_instrument.testing import Capture, Record


def test_fixture_captures_parsed_records_and_sends_nothing(statsd_capture, udp_collector):
    statsd.increment("orders_total", tags={"status": "paid"})
    statsd.gauge("temperature", -2.5)
    assert statsd_capture.records == [
        Record("orders_total", "c", 1.0, {"status": "paid"}, 1.0),
        Record("temperature", "g", 0.0, {}, 1.0),
        Record("temperature", "g", -2.5, {}, 1.0),
    ]
    assert statsd.stats["sent_datagrams"] == 0


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
