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


@pytest.mark.parametrize(
    ("kind", "value", "call"),
    [
        ("c", 3, lambda c, tags: c.increment("m", 3, tags=tags)),
        ("c", 2.5, lambda c, tags: c.increment("m", 2.5, tags=tags)),
        ("ms", 1.23456, lambda c, tags: c.timing("m", 1.23456, tags=tags)),
        ("h", 512, lambda c, tags: c.histogram("m", 512, tags=tags)),
        ("d", 1e-7, lambda c, tags: c.distribution("m", 1e-7, tags=tags)),
        ("g", 7, lambda c, tags: c.gauge("m", 7, tags=tags)),
        ("g", -5, lambda c, tags: c.gauge("m", -5, tags=tags)),
    ],
)
def test_a_prepared_metric_sends_the_line_the_metric_call_would(kind, value, call):
    c = Client(protocol="null", strict=True, prefix="app", constant_tags=["env:dev"])
    tags = ["table:users", "queue.kind:mail"]
    try:
        prepared = c.prepare(kind, "m", tags)
        with c.capture_lines() as by_call:
            call(c, tags)
        with c.capture_lines() as prepared_lines:
            prepared.send(value)
        assert prepared_lines == by_call
        assert prepared.line(value) == "\n".join(by_call)
        assert by_call[-1].startswith("app.m:")
        assert by_call[-1].endswith("|#env:dev,table:users,queue_kind:mail")
    finally:
        c.close()


def test_prepare_checks_now_and_sends_deltas_and_sampled_lines():
    c = Client(protocol="null", strict=True)
    try:
        for bad in (("ms", "db seconds"), ("ms", "db", {"le": "1"}), ("s", "db"), ("ms", "db", None, 2)):
            with pytest.raises(ValueError):
                c.prepare(*bad)
        with pytest.raises(ValueError, match="delta"):
            c.prepare("c", "db", delta=True)
        in_flight = c.prepare("g", "in_flight", delta=True)
        sampled = c.prepare("c", "hits", sample_rate=0.5)
        with c.capture_lines() as lines:
            in_flight.send(1)
            in_flight.send(-1)
            for _ in range(400):
                sampled.send(1)
        assert lines[:2] == ["in_flight:+1|g", "in_flight:-1|g"]
        assert set(lines[2:]) == {"hits:1|c|@0.5"}
        assert 100 < len(lines) - 2 < 300  # 200 expected; binomial(400, .5) is inside with p > 1 - 1e-20
    finally:
        c.close()


def test_a_prepared_metric_follows_namespace_constant_tags_and_capture_changes():
    c = Client(protocol="null", strict=True, prefix="old", constant_tags=["env:dev"])
    try:
        prepared = c.prepare("c", "jobs", ["queue:mail"])
        first = c.settings_generation
        with c.capture_lines() as lines:
            prepared.send(1)
        assert c.settings_generation > first  # entering and leaving capture mode both bump it
        c.configure(protocol="null", strict=True, prefix="new", constant_tags=["env:prod"])
        with c.capture_lines() as after:
            prepared.send(1)
        assert lines == ["old.jobs:1|c|#env:dev,queue:mail"]
        assert after == ["new.jobs:1|c|#env:prod,queue:mail"]
        # outside capture mode the prepared line goes to the real transport, not to a stale capture list
        prepared.send(1)
        assert after == ["new.jobs:1|c|#env:prod,queue:mail"]
        c.flush()
        assert c.stats["sent_lines"] == 1
    finally:
        c.close()


def test_a_prepared_metric_with_a_bad_value_is_dropped_and_counted_in_production():
    c = Client(protocol="null", strict=False)
    try:
        prepared = c.prepare("ms", "db")
        prepared.send("slow")
        assert c.stats["invalid_calls"] == 1
        with pytest.raises(ValueError, match="bad timing call for 'db'"), c.capture_lines():
            prepared.send(None)
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


def test_an_inline_tag_list_equal_to_one_seen_before_takes_the_cached_series(monkeypatch):
    c = Client(protocol="null", strict=True)
    try:
        for _ in range(2):  # the first call formats the tags, the second caches the series
            c.increment("jobs_total", tags=["queue:mail", "env:dev"])

        def general_path(*args: object) -> None:
            raise AssertionError("an equal tag list took the general path")

        monkeypatch.setattr(c, "_emit", general_path)
        mail = "".join(["queue:", "ma", "il"])  # an equal but new str in a new list
        c.increment("jobs_total", tags=[mail, "env:dev"])
        c.increment("jobs_total", 4, tags=[mail, "env:dev"])
        assert c._transport.pending_lines() == ["jobs_total:7|c|#queue:mail,env:dev"]
    finally:
        c.close()


def test_a_cached_inline_series_follows_a_reconfigured_client_and_capture_mode():
    c = Client(protocol="null", strict=True)
    try:
        for _ in range(3):
            c.increment("jobs_total", tags=["queue:mail"])
        with c.capture_lines() as captured:
            c.increment("jobs_total", tags=["queue:mail"])
        assert captured == ["jobs_total:1|c|#queue:mail"]
        assert c.stats["sent_lines"] == 3  # sent when the capture began
        c.increment("jobs_total", tags=["queue:mail"])
        assert c._transport.pending_lines() == ["jobs_total:1|c|#queue:mail"]
        c.configure(protocol="null", strict=True, prefix="shop", constant_tags=["env:dev"])
        for _ in range(3):
            c.increment("jobs_total", tags=["queue:mail"])
        assert c._transport.pending_lines() == ["shop.jobs_total:3|c|#env:dev,queue:mail"]
    finally:
        c.close()


def test_lines_as_written_keep_their_order_among_merged_counters_and_fill_datagrams(udp_collector):
    c = Client(port=udp_collector.port, strict=True, max_datagram_bytes=64, flush_interval_s=60)
    try:
        c.send_line("first:1|g")
        c.increment("hits")
        c.send_line("second:2|g")
        c.increment("hits")
        assert c._transport.pending_lines() == ["first:1|g", "hits:2|c", "second:2|g"]
        for n in range(8):  # lines of 29 bytes: the first joins the 3 above, then 2 per 64-byte datagram
            c.send_line(f"a.fairly.long.line.number:{n}|g")
        c.flush()
        lines = udp_collector.wait_for_lines(11)
    finally:
        c.close()
    datagrams = udp_collector.datagrams
    assert [len(d.split(b"\n")) for d in datagrams] == [4, 2, 2, 2, 1], datagrams
    assert all(len(d) <= 64 for d in datagrams), datagrams
    long_lines = [f"a.fairly.long.line.number:{n}|g" for n in range(8)]
    assert lines == ["first:1|g", "hits:2|c", "second:2|g", *long_lines]


def test_increments_on_the_lock_free_path_shown_by_pending_lines_are_still_sent(udp_collector):
    c = Client(port=udp_collector.port, flush_interval_s=60)
    try:
        for _ in range(4):  # the third and fourth append to the series' tally (BufferedTransport.tally)
            c.increment("t.hits", tags=["k:v"])
        assert c._transport.pending_lines() == ["t.hits:4|c|#k:v"]
        c.flush()
        assert udp_collector.wait_for_lines(1) == ["t.hits:4|c|#k:v"]
    finally:
        c.close()


def test_timings_of_a_series_seen_before_go_to_its_list_of_ms_and_leave_as_timing_sends_them():
    c = Client(protocol="null", strict=True, flush_interval_s=60)
    try:
        for ms in (12.3456789, 100.0):  # the general path (tags seen before: remembers the series' list)
            c.timing("view_ms", ms, tags=["view:x"])
        c.timing("view_ms", 250.0, tags=["view:x"])  # one append
        c.timing("view_ms", 7, tags=["view:x"])  # an int, a negative float: formatted as timing() always did
        c.timing("view_ms", -0.5, tags=["view:x"])
        for ms in (0.0004, 1e-4, 0.0):  # no tags: its own series
            c.timing("view_ms", ms)
        with pytest.raises(ValueError, match="inf"):
            c.timing("view_ms", float("inf"), tags=["view:x"])  # strict: raises on either path
        durations = c._transport._sample_lists[(None, ("view_ms", "ms", "|#view:x"), 1.0)]
        assert c._timings == {
            "view_ms": {
                ("view:x",): durations,
                (): c._transport._sample_lists[(None, ("view_ms", "ms", ""), 1.0)],
            }
        }
        assert durations == [250.0]
        assert c._transport.pending_lines() == [
            "view_ms:12.346:100:7:-0.5:250|ms|#view:x",
            "view_ms:0:0:0|ms",
        ]
        c.configure(protocol="null", strict=True, prefix="shop", flush_interval_s=60)
        assert c._timings == {}  # a new transport: its own lists
        c.timing("view_ms", 1.5, tags=["view:x"])
        c.timing("view_ms", 2.5, tags=["view:x"])
        assert c._transport.pending_lines() == ["shop.view_ms:1.5:2.5|ms|#view:x"]
        with c.capture_lines() as captured:
            c.timing("view_ms", 3.5, tags=["view:x"])
        assert captured == ["shop.view_ms:3.5|ms|#view:x"]
    finally:
        c.close()


@pytest.mark.parametrize("kind, call", [("h", "histogram"), ("d", "distribution")])
def test_histogram_and_distribution_values_of_a_series_seen_before_go_to_its_list(kind, call):
    c = Client(protocol="null", strict=True, flush_interval_s=60)
    try:
        send = getattr(c, call)
        for value in (1.5, 2.0):  # the general path (the second remembers the series' list)
            send("size", value, tags=["k:v"])
        for value in (-0.25, 1e-7, 7, 1e20):  # floats appended (sent as they are), the int formatted at once
            send("size", value, tags=["k:v"])
        values = c._transport._sample_lists[(None, ("size", kind, "|#k:v"), None)]
        assert values == [-0.25, 1e-7, 1e20]
        with pytest.raises(ValueError, match="nan"):
            send("size", float("nan"), tags=["k:v"])
        assert c._transport.pending_lines() == [f"size:1.5:2:7:-0.25:1e-07:1e+20|{kind}|#k:v"]
    finally:
        c.close()


def test_an_increment_the_exporter_could_not_read_is_left_out_and_counted_not_the_whole_window(udp_collector):
    c = Client(port=udp_collector.port, strict=False, flush_interval_s=60)
    try:
        for _ in range(3):  # the third goes to the series' tally: no size check on that path
            c.increment("huge", 10**5000, tags=["k:v"])
        c.increment("fine", tags=["k:v"])
        c.flush()
        assert udp_collector.wait_for_lines(1) == ["fine:1|c|#k:v"]
        assert c.stats["invalid_calls"] == 3 and c.stats["dropped_lines"] == 0
    finally:
        c.close()


def test_tags_as_a_dict_take_the_series_list_too_and_merge_with_the_same_tags_as_a_list():
    c = Client(protocol="null", strict=True, flush_interval_s=60)
    try:
        for _ in range(3):  # the general path twice (the second remembers the list), then one append
            c.increment("orders_total", tags={"status": "paid"})
            c.timing("view_ms", 2.5, tags={"view": "x"})
            c.gauge("depth", 3, tags={"q": "a"})
        c.increment("orders_total", tags=["status:paid"])  # the same series as a list: another cache key
        tally = c._transport._tallies[("orders_total", "c", "|#status:paid")]
        assert c._counters["orders_total"] == {(("status", "paid"),): tally}
        assert list(c._timings["view_ms"]) == [(("view", "x"),)] and list(c._gauges["depth"]) == [
            (("q", "a"),)
        ]
        assert c._transport.pending_lines() == [
            "orders_total:4|c|#status:paid",
            "view_ms:2.5:2.5:2.5|ms|#view:x",
            "depth:3|g|#q:a",
        ]
        for _ in range(3):  # not a str: never cached (1, 1.0 and True are equal keys that print differently)
            c.increment("orders_total", tags={"status": 200})
        assert (("status", 200),) not in c._counters["orders_total"]
    finally:
        c.close()
