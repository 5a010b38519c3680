"""Strict mode raises on programming errors; production mode drops, counts and warns once; sets refused."""

from __future__ import annotations

import logging

import pytest

from statsd_instrument import Client


def test_strict_mode_raises_naming_the_metric():
    c = Client(protocol="null", strict=True)
    try:
        with pytest.raises(ValueError, match=r"bad timing call for 'db query'"):
            c.timing("db query", 1.0)
        with pytest.raises(ValueError, match=r"bad counter call for 'hits'.*'le'"):
            c.increment("hits", tags={"le": "1"})
    finally:
        c.close()


def test_production_mode_drops_bad_calls_counts_them_and_warns_once_per_metric(production, caplog):
    with (
        caplog.at_level(logging.WARNING, logger="statsd_instrument"),
        production.capture_lines(strict=None) as lines,
    ):
        for _ in range(3):
            production.increment("bad name")
            production.gauge("depth", float("nan"))
            production.increment("fine", tags={"__x": "1"})
        production.increment("good")
    assert lines == ["good:1|c"]
    warned = [r.getMessage() for r in caplog.records if r.name == "statsd_instrument"]
    assert len(warned) == 3 and any("'bad name'" in w for w in warned)


def test_production_mode_counts_dropped_calls_in_stats(production):
    production.increment("bad name")
    production.histogram("h", "12")
    assert production.stats["invalid_calls"] == 2 and production.dropped == 2


def test_sets_are_refused_with_a_clear_error():
    c = Client(protocol="null", strict=True)
    try:
        with pytest.raises(ValueError, match="does not support sets"):
            c.set("users", "alice")
    finally:
        c.close()


def test_send_line_passes_lines_as_is_and_rejects_embedded_newlines():
    c = Client(protocol="null", strict=True)
    try:
        with c.capture_lines() as lines:
            c.send_line("any.thing:5|c|#x:y")
            with pytest.raises(ValueError, match="without newlines"):
                c.send_line("a:1|c\nb:2|c")
        assert lines == ["any.thing:5|c|#x:y"]
    finally:
        c.close()


def test_send_line_that_cannot_be_encoded_is_dropped_and_counted_not_raised():
    c = Client(protocol="null", strict=False)
    try:
        c.send_line("bad:\ud800|c")  # a lone surrogate: no UTF-8 for it
        c.send_line("good:1|c")
        c.flush()
        assert c.stats["invalid_calls"] == 1 and c.stats["sent_lines"] == 1
    finally:
        c.close()


def test_tag_cache_does_not_confuse_equal_but_differently_printed_values():
    c = Client(protocol="null", strict=True)
    try:
        with c.capture_lines() as lines:
            c.increment("t", tags={"v": "1"})
            c.increment("t", tags={"v": 1.0})
            c.increment("t", tags={"v": True})
            c.increment("t", tags={"v": "1"})
        assert lines == ["t:1|c|#v:1", "t:1|c|#v:1.0", "t:1|c|#v:True", "t:1|c|#v:1"]
    finally:
        c.close()


def test_a_closed_client_still_sends(udp_collector):
    c = Client(port=udp_collector.port)
    c.close()
    c.increment("after.close")
    try:
        assert udp_collector.wait_for_lines(1) == ["after.close:1|c"]
    finally:
        c.close()


def test_unhashable_tag_values_are_formatted_not_refused():
    c = Client(protocol="null", strict=True)
    try:
        with c.capture_lines() as lines:
            c.increment("t", tags={"ids": [1, 2]})
        assert lines == ["t:1|c|#ids:[1_ 2]"]
    finally:
        c.close()


def test_line_template_builds_the_line_a_metric_call_would():
    c = Client(protocol="null", strict=True, prefix="app", constant_tags=["env:dev"])
    try:
        with c.capture_lines() as lines:
            c.timing("db_seconds", 1.5, tags=["table:users"])
        head, tail = c.line_template("db_seconds", "ms", ["table:users"])
        assert [head + "1.5" + tail] == lines
        for bad in (("db seconds", "ms", None), ("db", "ms", {"le": "1"}), ("db", "s", None)):
            with pytest.raises(ValueError):
                c.line_template(*bad)
    finally:
        c.close()


def test_send_lines_sends_lines_together_with_what_is_buffered_at_once(udp_collector):
    c = Client(port=udp_collector.port, strict=False)
    try:
        with c.capture_lines() as lines:
            c.send_lines("a:1|c\nb:2|ms")
        assert lines == ["a:1|c", "b:2|ms"]  # captured line by line, like send_line of each
        c.increment("buffered")
        c.send_lines("a:1|c\nb:2|ms")  # no flush() needed: it sends
        assert udp_collector.wait_for_lines(3) == ["buffered:1|c", "a:1|c", "b:2|ms"]
        assert len(udp_collector.datagrams) == 1
        c.send_lines("bad:\ud800|c")  # cannot be encoded: dropped and counted, never raised
        assert c.stats["invalid_calls"] == 1 and c.stats["sent_lines"] == 3
    finally:
        c.close()
