"""Gauges merged per series in the flush window (statsd_instrument.transport): the rules on the buffer and
on the wire, the same final values at the exporter emulation as sending every call as written, concurrent
deltas against the flusher, C-level forks, and capture mode left as it was."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from statsd_instrument import Client, Gauge, transport
from statsd_instrument import client as client_module
from statsd_instrument.config import Settings
from statsd_instrument.exporter import Exporter
from statsd_instrument.http_metrics import RequestRecorder
from tests.helpers import scrape
from tests.test_transport import _libc_fork, _park_flusher, _wait_child

SET, DELTA = "set", "delta"


def _apply(c: Client, depth: Gauge, api: str, kind: str, value: float) -> None:
    """One gauge call of ``depth{q="a"}`` through ``api``."""
    if api == "client":
        c.gauge("depth", value, tags=["q:a"], delta=kind == DELTA)
    elif api == "declared":
        if kind == SET:
            depth.set(value, q="a")
        elif value >= 0:
            depth.inc(value, q="a")
        else:
            depth.dec(-value, q="a")
    elif api == "series":
        series = depth.labels(q="a")
        if kind == SET:
            series.set(value)
        else:
            series.inc(value)
    else:
        c.prepare("g", "depth", ["q:a"], delta=kind == DELTA).send(value)


APIS = ["client", "declared", "series", "prepared"]
RULES = [
    pytest.param([(SET, 7), (SET, 5)], ["5"], id="set-set: the last wins"),
    pytest.param([(DELTA, 1), (DELTA, 2)], ["+3"], id="delta-delta: summed"),
    pytest.param([(SET, 7), (DELTA, 2), (DELTA, 1)], ["7", "+3"], id="set-delta: the set, then the sum"),
    pytest.param([(DELTA, 1), (DELTA, 4), (SET, 7)], ["7"], id="delta-set: the set overrides"),
    pytest.param([(DELTA, 5), (SET, 2), (DELTA, -1)], ["2", "-1"], id="delta-set-delta"),
    pytest.param([(SET, -3)], ["0", "-3"], id="negative set: zero, then the negative delta"),
    pytest.param([(SET, -3), (DELTA, 1)], ["0", "-3", "+1"], id="negative set-delta"),
    pytest.param([(SET, 4), (SET, -2)], ["0", "-2"], id="set-negative set"),
    pytest.param([(DELTA, 1), (DELTA, -1)], ["+0"], id="deltas summing to 0 still sent"),
    pytest.param([(DELTA, 0.5), (DELTA, 0.25)], ["+0.75"], id="float deltas summed"),
    pytest.param([(DELTA, 1), (DELTA, 0.5)], ["+1.5"], id="int and float deltas"),
    pytest.param([(SET, 2.5), (DELTA, 1)], ["2.5", "+1"], id="float set-int delta"),
    pytest.param([(DELTA, -0.5), (DELTA, -0.5)], ["-1"], id="integral float sum printed as an int"),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(("changes", "values"), RULES)
def test_a_windows_calls_of_one_series_leave_as_the_fewest_lines_with_the_same_end_value(
    api, changes, values
):
    c = Client(protocol="null", flush_interval_s=60)
    depth = Gauge("depth", "Depth.", tags=("q",), client=c)
    try:
        for _ in range(2):  # the first call of a series takes the long way, the next ones its list
            for kind, value in changes:
                _apply(c, depth, api, kind, value)
            assert c._transport.pending_lines() == [f"depth:{v}|g|#q:a" for v in values]
            c.flush()
        assert c.stats["sent_lines"] == 2 * len(changes)  # one per call, as an unmerged client counts
    finally:
        c.close()


def test_float_deltas_are_summed_in_float64_and_the_exporter_adds_the_sum():
    """The documented decision: float deltas are summed (as the exporter adds them, in float64); the sum
    may differ from adding them one by one in the last bit."""
    c = Client(protocol="null", flush_interval_s=60)
    try:
        c.gauge("ratio", 0.1, delta=True)
        c.gauge("ratio", 0.2, delta=True)
        assert c._transport.pending_lines() == [f"ratio:+{0.1 + 0.2!r}|g"]  # 0.30000000000000004
    finally:
        c.close()


def test_lines_as_written_keep_their_order_and_gauge_series_follow_in_first_call_order(udp_collector):
    c = Client(port=udp_collector.port, flush_interval_s=60)
    try:
        c.send_line("first:1|g")
        c.gauge("b", 1, delta=True)
        c.gauge("a", 3)
        c.send_line("second:2|g")
        c.gauge("b", 2, delta=True)
        c.gauge("a", -1, delta=True)
        c.gauge("c", -4)
        c.flush()
        lines = udp_collector.wait_for_lines(7)
    finally:
        c.close()
    assert len(udp_collector.datagrams) == 1
    assert lines == ["first:1|g", "second:2|g", "b:+3|g", "a:3|g", "a:-1|g", "c:0|g", "c:-4|g"]
    assert c.stats["sent_lines"] == 7 and c.stats["sent_datagrams"] == 1


def test_a_set_and_the_deltas_after_it_travel_in_one_datagram_when_the_buffer_splits(udp_collector):
    c = Client(port=udp_collector.port, flush_interval_s=60)
    try:
        for i in range(200):  # more series than one datagram holds
            c.gauge("a.fairly.long.gauge.name", -i - 1, tags={"i": str(i)})
            c.gauge("a.fairly.long.gauge.name", 1, tags={"i": str(i)}, delta=True)
        c.flush()
        udp_collector.wait_for_lines(600)
    finally:
        c.close()
    time.sleep(0.1)
    datagrams = [d.decode().split("\n") for d in udp_collector.datagrams]
    assert len(datagrams) > 1 and max(map(len, udp_collector.datagrams)) <= 1432
    for lines in datagrams:
        assert len(lines) % 3 == 0  # never a series' 0, -N and +1 split across datagrams
        for zero, negative, delta in zip(lines[::3], lines[1::3], lines[2::3]):
            tags = zero.split("|", 2)[2]
            assert zero.startswith("a.fairly.long.gauge.name:0|g")
            assert negative.endswith(tags) and negative.split("|")[0].split(":")[1].startswith("-")
            assert delta == f"a.fairly.long.gauge.name:+1|g|{tags}"
    assert sum(map(len, datagrams)) == 600
    assert c.stats["sent_lines"] == 400


def test_a_kept_sampled_gauge_call_merges_and_its_lines_carry_the_rate(monkeypatch):
    monkeypatch.setattr(client_module, "_random", lambda: 0.0)  # every sampled call is kept
    c = Client(protocol="null", flush_interval_s=60)
    try:
        c.gauge("depth", 7)
        c.gauge("depth", 2, sample_rate=0.5, delta=True)
        c.prepare("g", "depth", sample_rate=0.5, delta=True).send(1)
        c.gauge("depth", 1, delta=True)
        assert c._transport.pending_lines() == ["depth:7|g|@0.5", "depth:+4|g|@0.5"]
        monkeypatch.setattr(client_module, "_random", lambda: 0.99)  # dropped: nothing changes
        c.gauge("depth", 100, sample_rate=0.5)
        assert c._transport.pending_lines() == ["depth:7|g|@0.5", "depth:+4|g|@0.5"]
    finally:
        c.close()


def test_capture_mode_still_records_one_entry_per_call():
    c = Client(protocol="null")
    depth = Gauge("depth", "Depth.", tags=("q",), client=c)
    with c.capture_lines() as lines:
        c.gauge("depth", 7, tags=["q:a"])
        depth.set(-2, q="a")
        depth.inc(q="a")
        depth.dec(0.5, q="a")
        c.gauge("depth", 0, tags=["q:a"], delta=True)
    c.close()
    assert lines == [
        "depth:7|g|#q:a",
        "depth:0|g|#q:a\ndepth:-2|g|#q:a",
        "depth:+1|g|#q:a",
        "depth:-0.5|g|#q:a",
        "depth:+0|g|#q:a",
    ]


def test_series_past_the_list_limit_merge_under_the_lock_by_the_same_rules(monkeypatch):
    monkeypatch.setattr(transport, "TALLIES_MAX", 0)  # no series gets a list
    c = Client(protocol="null", flush_interval_s=60)
    try:
        c.gauge("depth", 1, delta=True)
        c.gauge("depth", 7)
        c.gauge("depth", 2, delta=True)
        c.gauge("depth", -1, delta=True)
        assert c._transport._gauges == {}
        assert c._transport.pending_lines() == ["depth:7|g", "depth:+1|g"]
    finally:
        c.close()


def test_bad_gauge_values_are_refused_on_every_path(production):
    depth = Gauge("depth", "Depth.", tags=("q",), client=production)
    for value in (float("nan"), float("inf"), True, "7", None):
        production.gauge("depth", value, tags=["q:a"])  # type: ignore[arg-type]
        depth.set(value, q="a")  # type: ignore[arg-type]
        depth.inc(value, q="a")  # type: ignore[arg-type]
    assert production.stats["invalid_calls"] == 15
    assert production._transport.pending_lines() == []
    depth.set(1e308, q="a")  # finite, past the inline check's bounds: merged through the client
    assert production._transport.pending_lines() == ["depth:1e+308|g|#q:a"]
    depth.inc(10**301, q="a")  # an int: on the series' list as is
    depth.inc(0.5, q="a")
    assert production._transport.pending_lines() == [
        "depth:1e+308|g|#q:a",
        f"depth:+{10**301 + 0.5!r}|g|#q:a",
    ]


def test_an_int_too_large_for_the_exporter_on_a_lock_free_path_is_left_out_and_counted(production):
    """The lock-free paths check only an int's type (comparing it with a float costs 0.1 µs): the buffer
    leaves out an int the exporter could not read (it would drop the line as malformed) and counts it."""
    depth = Gauge("depth", "Depth.", tags=("q",), client=production)
    production.gauge("depth", 1, tags=["q:a"], delta=True)
    production.gauge("depth", 10**400, tags=["q:a"], delta=True)  # added to a float below: overflow
    production.gauge("depth", 0.5, tags=["q:a"], delta=True)
    depth.set(7, q="b")
    depth.set(-(10**5000), q="b")  # an int without a str (more than 4300 digits)
    depth.inc(q="c")
    depth.labels(q="c").set(10**400)  # the set left out: the deltas around it stay
    depth.inc(-1, q="c")
    depth.inc(1, q="c")
    assert production._transport.pending_lines() == ["depth:+1.5|g|#q:a", "depth:7|g|#q:b", "depth:+1|g|#q:c"]
    assert production.stats["invalid_calls"] == 3
    transport = production._transport
    transport.flush()
    alone = transport.gauges(("alone", "g", ""))
    transport.append_first(alone, 10**400)  # alone: nothing of the series is left, no datagram
    sent = transport.stats.sent_datagrams
    assert transport.pending_lines() == []
    transport.flush()
    assert transport.stats.sent_datagrams == sent and production.stats["invalid_calls"] == 4


def test_the_request_recorder_merges_its_in_flight_changes_and_keeps_its_one_append_path(udp_collector):
    c = Client(port=udp_collector.port, flush_interval_s=60)
    recorder = RequestRecorder(c, "shop", in_flight=True)
    try:
        for _ in range(5):
            recorder.started()
            recorder.finished("GET", "/a", 200, 0.002)
        recorder.started()  # one still in flight at the flush
        shape = recorder._shapes[("GET", "/a", 200)]
        assert shape[4] is not None and shape[6] is not None  # durations and in-flight changes: lists
        c.flush()
        lines = udp_collector.wait_for_lines(3)
    finally:
        c.close()
    tags = "|#service:shop,method:GET,endpoint:/a,status:200"
    assert lines == [
        f"request_count:5|c{tags}",
        f"request_latency_seconds:2:2:2:2:2|ms{tags}",
        "request_in_flight:+1|g|#service:shop",
    ]
    assert c.stats["sent_lines"] == 5 * 4 + 1


# -- the exporter: the same final values as sending every call as written ---------------------------------


class _Sides:
    """Two embedded exporters: one fed by a buffering client (merged), one by the lines a capture records
    per call, sent as written in call order (one datagram per window)."""

    def __init__(self) -> None:
        self.merged = Exporter(udp="127.0.0.1:0", web="127.0.0.1:0")
        self.written = Exporter(udp="127.0.0.1:0", web="127.0.0.1:0")
        self.merged.start()
        self.written.start()
        # no telemetry: every datagram the exporter counts is one the client sent
        self.client = Client(port=self.merged.udp_port, flush_interval_s=60, telemetry_interval_s=0)
        self.capture = Client(protocol="null")
        self.gauges = [
            Gauge("diff_gauge", "Diff.", tags=("s",), client=c) for c in (self.client, self.capture)
        ]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sent = {"merged": 0, "written": 0}  # datagrams sent to each exporter here (not by the client)

    def send(self, side: str, lines: list[str]) -> None:
        if lines:
            port = self.merged.udp_port if side == "merged" else self.written.udp_port
            self.sock.sendto("\n".join(lines).encode(), ("127.0.0.1", port))
            self.sent[side] += 1

    def values(self) -> tuple[dict, dict]:
        """The gauge values each exporter exports, once it has every datagram sent to it."""
        out = []
        for side, exporter in (("merged", self.merged), ("written", self.written)):
            sent = self.sent[side] + (self.client.stats["sent_datagrams"] if side == "merged" else 0)
            assert exporter.wait_for_packets(sent, timeout_s=10)
            page = scrape(exporter.metrics_url)
            out.append({k: v for k, v in page.items() if k[0] == "diff_gauge"})
        return out[0], out[1]

    def close(self) -> None:
        self.sock.close()
        self.client.close()
        self.capture.close()
        self.merged.stop()
        self.written.stop()


@pytest.fixture(scope="module")
def sides():
    s = _Sides()
    yield s
    s.close()


_VALUES = st.one_of(st.integers(-40, 40), st.integers(-160, 160).map(lambda n: n / 4))  # exact sums
_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from([SET, DELTA]),
            st.sampled_from(["a", "b"]),
            _VALUES,
            st.sampled_from(["client", "client dict", "declared", "series", "prepared"]),
        ),
        st.just(("flush",)),
    ),
    max_size=40,
)


@hypothesis_settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_the_exporter_ends_with_the_same_gauge_values_as_when_every_call_is_sent_as_written(sides, ops):
    for series in ("a", "b"):  # a known start on both sides
        for side in ("merged", "written"):
            sides.send(side, [f"diff_gauge:0|g|#s:{series}"])
    with sides.capture.capture_lines() as written:
        for op in [*ops, ("flush",)]:
            if op[0] == "flush":
                sides.client.flush()
                sides.send("written", written[:])
                del written[:]
                continue
            kind, series, value, api = op
            for c, gauge in zip((sides.client, sides.capture), sides.gauges):
                if api == "client":
                    c.gauge("diff_gauge", value, tags=[f"s:{series}"], delta=kind == DELTA)
                elif api == "client dict":  # never cached: the general path, every call
                    c.gauge("diff_gauge", value, tags={"s": series}, delta=kind == DELTA)
                elif api == "prepared":
                    c.prepare("g", "diff_gauge", [f"s:{series}"], delta=kind == DELTA).send(value)
                elif api == "series":
                    labelled = gauge.labels(s=series)
                    if kind == SET:
                        labelled.set(value)
                    else:
                        labelled.inc(value)
                elif kind == SET:
                    gauge.set(value, s=series)
                elif value >= 0:
                    gauge.inc(value, s=series)
                else:
                    gauge.dec(-value, s=series)
    merged, as_written = sides.values()
    assert merged == as_written
    assert len(merged) == 2


# -- concurrency and fork -------------------------------------------------------------------------------


def test_concurrent_gauge_deltas_against_a_flusher_every_10_ms_lose_and_add_nothing():
    """Inline tag lists, declared inc/dec, a .labels() series, a prepared delta and the request recorder's
    in-flight +1/-1 change one series each way without a lock while the flusher drains every 10 ms: the
    exporter ends at the start value plus every delta."""
    with Exporter(udp="127.0.0.1:0", web="127.0.0.1:0") as exporter:
        c = Client(port=exporter.udp_port, flush_interval_s=0.01, telemetry_interval_s=0)
        depth = Gauge("mt_depth", "Depth.", tags=("k",), client=c)
        series = depth.labels(k="v")
        prepared = c.prepare("g", "mt_depth", ["k:v"], delta=True)
        recorder = RequestRecorder(c, "shop", in_flight=True)
        per_thread, threads = 10_000, 6
        depth.set(100, k="v")

        def emit(t: int) -> None:
            for _ in range(per_thread):
                if t == 0:
                    c.gauge("mt_depth", 1, tags=["k:v"], delta=True)
                elif t == 1:
                    depth.inc(2, k="v")
                elif t == 2:
                    depth.dec(k="v")
                elif t == 3:
                    series.inc(0.5)
                elif t == 4:
                    prepared.send(-3)
                else:
                    recorder.started()
                    recorder.finished("GET", "/a", 200, 0.001)

        workers = [threading.Thread(target=emit, args=(t,)) for t in range(threads)]
        try:
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            c.flush()
            assert exporter.wait_for_packets(c.stats["sent_datagrams"], timeout_s=10)
            page = scrape(exporter.metrics_url)
        finally:
            c.close()
    assert page[("mt_depth", (("k", "v"),))] == 100 + per_thread * (1 + 2 - 1 + 0.5 - 3)
    assert page[("request_in_flight", (("service", "shop"),))] == 0
    assert page[
        (
            "request_count_total",
            (("endpoint", "/a"), ("method", "GET"), ("service", "shop"), ("status", "200")),
        )
    ] == (per_thread)
    assert c.stats["sent_lines"] == 1 + per_thread * (threads - 1) + per_thread * 4  # one per call


def test_a_c_forked_child_drops_its_parents_gauge_window_and_sends_its_own(udp_collector):
    c = Client(port=udp_collector.port, flush_interval_s=60)
    depth = Gauge("fork_depth", "Depth.", tags=("q",), client=c)
    recorder = RequestRecorder(c, "shop", in_flight=True)
    try:
        for _ in range(2):  # merged, on the lock-free paths, in the parent at fork time
            c.gauge("fork_g", 5)
            c.gauge("fork_g", 1, tags=None, delta=True)
            depth.inc(q="a")
            recorder.started()
        _park_flusher()
        pid = _libc_fork()
        if pid == 0:  # child: no Python fork hooks ran, exactly as under uwsgi
            try:
                depth.inc(q="a")
                c.gauge("fork_g", 2, delta=True)
                recorder.started()
                recorder.finished("GET", "/a", 200, 0.001)
                c.flush()
            finally:
                os._exit(0)
        assert _wait_child(pid) == 0
        c.flush()
        udp_collector.wait_for_lines(8)
    finally:
        c.close()
    time.sleep(0.2)
    request = "|#service:shop,method:GET,endpoint:/a,status:200"
    assert sorted(udp_collector.lines()) == sorted(
        [
            "fork_g:5|g",  # the parent's window
            "fork_g:+1|g",
            "fork_depth:+2|g|#q:a",
            "request_in_flight:+2|g|#service:shop",
            "fork_depth:+1|g|#q:a",  # the child's own
            "fork_g:+2|g",
            "request_in_flight:+0|g|#service:shop",
            f"request_count:1|c{request}",
            f"request_latency_seconds:1|ms{request}",
        ]
    )


def test_a_c_forked_child_gets_its_gauge_lists_despite_a_lock_held_at_fork():
    t = transport.BufferedTransport(Settings(protocol="null"))
    try:
        with t._lock:  # as if another thread were folding the buffer at fork time
            pid = _libc_fork()
            if pid == 0:
                try:
                    t.gauge(("g", "g", ""), 1)
                    os._exit(0 if t.pending_lines() == ["g:+1|g"] else 1)
                finally:
                    os._exit(2)
        assert _wait_child(pid) == 0
    finally:
        t.close()
