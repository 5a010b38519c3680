"""Batching limits, idle and exit flushes, fork safety (C-level fork, as uwsgi does it), and send errors
that never reach the app."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from statsd_instrument import Client, Counter, Histogram, transport
from statsd_instrument.config import Settings
from statsd_instrument.http_metrics import RequestRecorder
from statsd_instrument.sinks import DatagramRefusedError, UdpSink
from statsd_instrument.transport import BufferedTransport
from tests.helpers import REPO, UdpCollector

# Forks like uwsgi: from C, so Python's fork hooks do not run; through PyDLL, so the calling thread keeps the
# GIL during fork() as uwsgi's does (through CDLL another thread could hold it then, and the child would wait
# for it forever).
_libc_fork = ctypes.PyDLL(None, use_errno=True).fork


def _wait_child(pid: int, timeout_s: float = 20.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError(f"child {pid} hung (deadlock?)")


def _park_flusher() -> None:
    """Let a just-started flusher thread reach its idle wait before a C-level fork: the state these tests
    mean to fork in (a uwsgi master never runs the flusher thread; a worker that forks is rare)."""
    time.sleep(0.1)


def test_udp_datagrams_are_full_but_never_over_1432_bytes(udp_collector):
    c = Client(port=udp_collector.port, flush_interval_s=60)
    try:
        for i in range(300):
            c.increment("batch.metric_name", tags={"i": str(i)})
        c.flush()
        lines = udp_collector.wait_for_lines(300)
    finally:
        c.close()
    sizes = [len(d) for d in udp_collector.datagrams]
    assert sorted(int(ln.rsplit(":", 1)[1]) for ln in lines) == list(range(300))
    assert max(sizes) <= 1432
    line_bytes = sum(len(ln) + 1 for ln in lines)
    assert len(sizes) <= line_bytes // (1432 - 40) + 1  # as few datagrams as the lines allow
    assert c.stats["sent_datagrams"] == len(sizes) and c.dropped == 0


def test_concurrent_threads_lose_and_duplicate_no_line(udp_collector):
    c = Client(port=udp_collector.port, flush_interval_s=0.05)  # the flusher drains concurrently too
    per_thread, threads = 3000, 4

    def emit(t):
        for i in range(per_thread):
            c.increment("mt.hits", tags={"t": str(t), "i": str(i)})

    workers = [threading.Thread(target=emit, args=(t,)) for t in range(threads)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        c.flush()
        lines = udp_collector.wait_for_lines(per_thread * threads)
    finally:
        c.close()
    time.sleep(0.2)
    assert len(udp_collector.lines()) == len(set(lines)) == per_thread * threads
    assert max(len(d) for d in udp_collector.datagrams) <= 1432


def test_concurrent_increments_of_one_series_on_the_lock_free_paths_lose_and_add_nothing(udp_collector):
    """Inline tag lists, declared counters, timings and declared timers append to a series' list without a
    lock while the flusher drains it every 10 ms: every call arrives once."""
    c = Client(port=udp_collector.port, flush_interval_s=0.01)
    orders = Counter("mt_orders_total", "Orders.", tags=("status",), client=c)
    paid = orders.labels(status="paid")
    checkout = Histogram("mt_checkout_seconds", "Checkout.", tags=("step",), client=c)
    per_thread, threads = 20_000, 6

    def emit(t: int) -> None:
        for _ in range(per_thread):
            if t == 0:
                c.increment("mt.inline", tags=["k:v"])
            elif t == 1:
                orders.increment(status="paid")
            elif t == 2:
                paid.increment(2)
            elif t == 3:
                c.increment("mt.inline", 3, tags=["k:v"])
            elif t == 4:
                c.timing("mt.latency", 1.5, tags=["k:v"])
            else:
                checkout.observe(0.0025, step="pay")

    workers = [threading.Thread(target=emit, args=(t,)) for t in range(threads)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        c.flush()
        calls = udp_collector.wait_for_calls(per_thread * 9)  # a counter line counts its value
    finally:
        c.close()
    time.sleep(0.2)
    assert udp_collector.calls() == calls
    assert dict(calls) == {
        "mt.inline": per_thread * 4,
        "mt_orders_total": per_thread * 3,
        "mt.latency": per_thread,
        "mt_checkout_seconds": per_thread,
    }
    values = {
        v for line in udp_collector.lines() if "|ms|" in line for v in line.split("|")[0].split(":")[1:]
    }
    assert values == {"1.5", "2.5"}
    assert c.stats["sent_lines"] == per_thread * threads  # one per call, as an unmerged client would send


def test_lines_sent_together_that_overflow_a_datagram_are_split_not_oversized(udp_collector):
    c = Client(port=udp_collector.port, flush_interval_s=60)
    try:
        many = "\n".join(f"request.part:{i}|c|#endpoint:/a/long/route/template/{i}" for i in range(100))
        c.send_lines(many)  # nothing buffered before: the one-datagram fast path must not take this
        lines = udp_collector.wait_for_lines(100)
    finally:
        c.close()
    assert sorted(lines) == sorted(many.split("\n"))
    assert max(len(d) for d in udp_collector.datagrams) <= 1432


def test_unixgram_datagrams_are_never_over_8192_bytes():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.sock")
        collector = UdpCollector(unix_path=path)
        c = Client(socket_path=path, flush_interval_s=60, multi_value=False)  # one line per sample
        try:
            for i in range(1000):
                c.timing("unix.latency", i / 7, tags=["endpoint:/x"])
            c.flush()
            lines = collector.wait_for_lines(1000)
        finally:
            c.close()
            collector.close()
    sizes = [len(d) for d in collector.datagrams]
    assert len(lines) == 1000 and max(sizes) <= 8192 and len(sizes) <= 6


def test_samples_of_a_series_leave_on_multi_value_lines_no_longer_than_the_exporter_reads(udp_collector):
    c = Client(port=udp_collector.port, flush_interval_s=60, max_datagram_bytes=8192)
    try:
        for i in range(2000):
            c.timing("mv.latency", i / 7, tags=["endpoint:/x"])
            c.increment("mv.hits", tags=["endpoint:/x"])
        c.increment("mv.hits", 2.5)  # not an int: sent as written
        c.flush()
        udp_collector.wait_for_calls(4001)
    finally:
        c.close()
    lines = udp_collector.lines()
    assert max(len(line) for line in lines) < 4096  # statsd_exporter's TCP line limit
    values = [
        v for line in lines if line.startswith("mv.latency:") for v in line.split("|")[0].split(":")[1:]
    ]
    assert [float(v) for v in values] == [round(i / 7, 3) for i in range(2000)]  # all, in call order
    hits = [line.split("|")[0].split(":")[1] for line in lines if line.endswith("|c|#endpoint:/x")]
    assert sum(int(h) for h in hits) == 2000 and len(hits) < 10  # summed within each datagram
    assert "mv.hits:2.5|c" in lines
    assert c.stats["sent_lines"] == 4001 and c.dropped == 0


def test_unixgram_waits_for_a_receiver_that_is_behind_instead_of_dropping():
    # the kernel queues 10 datagrams per unix socket by default: a sender outruns a reader that is slower
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.sock")
        received = []
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as slow:
            slow.bind(path)
            slow.settimeout(2.0)

            def read_slowly() -> None:
                try:
                    while len(received) < 100:
                        received.append(slow.recv(8192))
                        time.sleep(0.001)
                except OSError:  # nothing more came: the assertion below says what was lost
                    pass

            reader = threading.Thread(target=read_slowly, daemon=True)
            reader.start()
            c = Client(socket_path=path, flush_interval_s=60)
            try:
                for i in range(100):
                    c.increment("burst.hits", tags=[f"i:{i}"])
                    c.flush()  # one datagram each, as fast as the sender can go
                stats = c.stats
            finally:
                c.close()
            reader.join(5)
    assert stats["dropped_lines"] == 0 and len(received) == 100, stats


def test_unixgram_to_a_stalled_receiver_drops_and_then_stops_waiting():
    from statsd_instrument.sinks import UnixgramSink

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as stalled:  # bound, never read
            stalled.bind(path)
            sink = UnixgramSink(path)
            outcomes = []
            try:
                for _ in range(40):
                    try:
                        sink.send(b"x:1|c")
                        outcomes.append("sent")
                    except OSError as err:
                        outcomes.append(type(err).__name__)
            finally:
                sink.close()
    # the queue fills; the first send that finds it full waits and times out; later ones drop at once
    first_failure = outcomes.index("timeout") if "timeout" in outcomes else outcomes.index("TimeoutError")
    assert set(outcomes[:first_failure]) == {"sent"} and first_failure >= 1
    assert set(outcomes[first_failure + 1 :]) == {"BlockingIOError"}, outcomes


def test_lines_are_sent_without_flush_when_the_process_goes_idle(udp_collector):
    c = Client(port=udp_collector.port, flush_interval_s=0.2)
    try:
        c.increment("idle.hits")
        assert udp_collector.wait_for_lines(1, timeout_s=10) == ["idle.hits:1|c"]
    finally:
        c.close()


@pytest.mark.e2e
def test_buffered_lines_are_sent_at_interpreter_exit(udp_collector):
    code = (
        "from statsd_instrument import Client\n"
        f"c = Client(port={udp_collector.port}, flush_interval_s=60)\n"
        "for i in range(3):\n"
        "    c.increment('exit.hits')\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
    assert udp_collector.wait_for_lines(1, timeout_s=10) == ["exit.hits:3|c"]  # merged in the window


def test_a_c_forked_child_drops_the_parents_buffer_and_sends_its_own(udp_collector):
    c = Client(port=udp_collector.port, flush_interval_s=60)
    try:
        c.increment("fork.parent")  # buffered in the parent (and a flusher thread runs) at fork time
        _park_flusher()
        pid = _libc_fork()
        if pid == 0:  # child: no Python fork hooks ran, exactly as under uwsgi
            try:
                c.increment("fork.child")
                c.flush()
            finally:
                os._exit(0)
        assert _wait_child(pid) == 0
        c.flush()
        lines = udp_collector.wait_for_lines(2)
    finally:
        c.close()
    time.sleep(0.2)
    assert sorted(udp_collector.lines()) == ["fork.child:1|c", "fork.parent:1|c"], lines


@pytest.mark.parametrize("first", ["inline", "declared", "histogram", "recorder", "timing"])
def test_a_c_forked_child_adds_nothing_to_the_series_and_lines_its_parent_had_buffered(udp_collector, first):
    """The cheap paths (a series already in the window, its lock-free list, a line as written) notice the fork
    too, whichever the child calls first: the child's calls to what its parent had buffered count only the
    child's own."""
    c = Client(port=udp_collector.port, flush_interval_s=60)
    orders = Counter("orders_total", "Orders.", tags=("status",), client=c)
    checkout = Histogram("checkout_seconds", "Checkout.", tags=("step",), client=c)
    recorder = RequestRecorder(c, "shop")
    paths = {
        "inline": lambda ms: c.increment("fork.same", tags=["k:v"]),
        "declared": lambda ms: orders.increment(status="paid"),
        "histogram": lambda ms: checkout.observe(ms / 1000, step="pay"),
        "recorder": lambda ms: recorder.finished("GET", "/a", "200 OK", ms / 1000),
        "timing": lambda ms: c.timing("fork.timing", float(ms), tags=["k:v"]),
    }
    try:
        for ms in (1, 2, 3):  # the later calls of each path append to its lock-free list in the parent
            for call in paths.values():
                call(ms)
        c.send_line("fork.parent:1|g")
        _park_flusher()
        pid = _libc_fork()
        if pid == 0:  # child: no Python fork hooks ran, exactly as under uwsgi
            try:  # the first call in the child re-arms the fork flag: each path goes first in turn
                for name in [first, *(name for name in paths if name != first)]:
                    paths[name](4)
                c.send_line("fork.child:1|g")
                c.flush()
            finally:
                os._exit(0)
        assert _wait_child(pid) == 0
        c.flush()
        lines = udp_collector.wait_for_lines(14)
    finally:
        c.close()
    time.sleep(0.2)
    request = "|#service:shop,method:GET,endpoint:/a,status:200"
    assert sorted(udp_collector.lines()) == sorted(
        [
            *("fork.same:3|c|#k:v", "orders_total:3|c|#status:paid", "checkout_seconds:1:2:3|ms|#step:pay"),
            *(f"request_count:3|c{request}", f"request_latency_seconds:1:2:3|ms{request}"),
            *("fork.timing:1:2:3|ms|#k:v", "fork.parent:1|g"),
            *("fork.same:1|c|#k:v", "orders_total:1|c|#status:paid", "checkout_seconds:4|ms|#step:pay"),
            *(f"request_count:1|c{request}", f"request_latency_seconds:4|ms{request}"),
            *("fork.timing:4|ms|#k:v", "fork.child:1|g"),
        ]
    ), lines


def test_a_c_forked_child_gets_its_tallies_and_request_lists_despite_a_lock_held_at_fork():
    t = BufferedTransport(Settings(protocol="null"))
    try:
        with t._lock:  # as if another thread were folding the buffer at fork time
            pid = _libc_fork()
            if pid == 0:
                try:
                    t.samples(("n", "c", ""), ("t", "ms", ""))
                    t.tally(("h", "c", ""))
                finally:
                    os._exit(0)
        assert _wait_child(pid) == 0
    finally:
        t.close()


@pytest.mark.parametrize("make", [transport._process_flag, transport._PidFlag])
def test_the_fork_flag_reads_set_in_its_process_and_clear_in_a_c_forked_child(make):
    flag = make()
    flag[0] = 1
    pid = _libc_fork()
    if pid == 0:
        os._exit(10 + flag[0])
    assert _wait_child(pid) == 10
    assert flag[0] == 1


def test_a_lock_held_at_fork_time_does_not_deadlock_the_child(udp_collector):
    c = Client(port=udp_collector.port, flush_interval_s=60)
    try:
        c.increment("lock.parent")
        _park_flusher()
        transport = c._transport
        with transport._lock, transport._sink_lock:  # as if other threads were mid-send at fork time
            pid = _libc_fork()
            if pid == 0:
                try:
                    c.increment("lock.child")
                    c.flush()
                finally:
                    os._exit(0)
        assert _wait_child(pid) == 0
        c.flush()
        lines = udp_collector.wait_for_lines(2)
    finally:
        c.close()
    assert sorted(lines) == ["lock.child:1|c", "lock.parent:1|c"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"socket_path": "/nonexistent/dir/statsd.sock"},
        {"host": "statsd-exporter.invalid", "port": 9125},
        {"protocol": "tcp", "host": "127.0.0.1", "port": 1},
    ],
    ids=["unixgram-missing", "unresolvable", "tcp-refused"],
)
def test_an_unreachable_exporter_never_raises_counts_drops_and_warns_once(kwargs, caplog):
    c = Client(flush_interval_s=60, **kwargs)
    try:
        with caplog.at_level(logging.WARNING, logger="statsd_instrument"):
            for _ in range(5):
                c.increment("lost.hits")
                c.gauge("lost.depth", -1)
                c.flush()
    finally:
        c.close()
    assert c.stats["dropped_lines"] == 10 and c.stats["send_errors"] == 5 and c.dropped == 10
    warnings = [r for r in caplog.records if r.name == "statsd_instrument"]
    assert len(warnings) == 1 and "cannot send to" in warnings[0].getMessage()


class _FakeUwsgi:
    """Stands in for the module uwsgi injects, for the one decision below (real uwsgi: e2e tests)."""

    def __init__(self, version_info, opt, worker_id=1):
        self.version_info, self.opt, self._worker_id = version_info, opt, worker_id

    def worker_id(self):
        return self._worker_id

    def mule_id(self):
        return 0


@pytest.mark.parametrize(
    ("fake", "allowed"),
    [
        (_FakeUwsgi((2, 0, 31, 0, ""), {}), True),  # threads on by default since 2.0.27
        (_FakeUwsgi((2, 0, 21, 0, ""), {}), False),  # idle workers would starve a thread: send at once
        (_FakeUwsgi((2, 0, 21, 0, ""), {"enable-threads": True}), True),
        (_FakeUwsgi((2, 0, 31, 0, ""), {}, worker_id=0), False),  # the master forks from C later
    ],
)
def test_flusher_thread_only_where_uwsgi_lets_it_run_and_never_in_a_master(fake, allowed, monkeypatch):
    from statsd_instrument import transport

    monkeypatch.setitem(sys.modules, "uwsgi", fake)
    monkeypatch.setattr(transport, "_uwsgi_threads", None)
    assert transport.threads_allowed() is allowed


def test_without_a_flusher_thread_every_line_is_sent_at_once(udp_collector, monkeypatch):
    from statsd_instrument import transport

    monkeypatch.setattr(transport, "threads_allowed", lambda: False)
    c = Client(port=udp_collector.port, flush_interval_s=60)
    try:
        c.increment("sync.a")
        c.increment("sync.b")
        assert udp_collector.wait_for_lines(2) == ["sync.a:1|c", "sync.b:1|c"]
        assert c.stats["sent_datagrams"] == 2 and c._transport._thread is None
    finally:
        c.close()


def _blocked_signals(native_id: int) -> set:
    """Signals blocked in one thread of this process, read from the kernel (Linux /proc)."""
    with open(f"/proc/self/task/{native_id}/status") as status:
        mask = int(next(ln for ln in status if ln.startswith("SigBlk:")).split()[1], 16)
    return {signum for signum in range(1, 65) if mask >> (signum - 1) & 1}


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux /proc")
def test_flusher_thread_never_takes_a_stop_signal_and_the_starting_thread_keeps_its_mask(udp_collector):
    # uwsgi's C stop handlers call exit() in whichever thread the kernel picks: never the flusher thread
    main_before = _blocked_signals(threading.get_native_id())
    c = Client(port=udp_collector.port, flush_interval_s=60)
    try:
        c.increment("mask.hits")
        flusher = c._transport._thread
        assert flusher is not None and flusher.is_alive()
        blocked = _blocked_signals(flusher.native_id)
        assert {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1} <= blocked
        assert signal.SIGSEGV not in blocked  # a fault still reaches the thread that caused it
        assert _blocked_signals(threading.get_native_id()) == main_before
    finally:
        c.close()
    assert udp_collector.wait_for_lines(1) == ["mask.hits:1|c"]


def test_a_connected_udp_socket_reports_a_datagram_nobody_received_on_the_next_send_only():
    receiver = UdpCollector()
    port = receiver.port
    sink = UdpSink("127.0.0.1", port)
    try:
        sink.send(b"before:1|c")
        assert receiver.wait_for_lines(1) == ["before:1|c"]
        receiver.close()  # the exporter restarts: nothing listens on the port for a moment
        sink.send(b"lost:1|c")  # goes nowhere; the kernel answers with ICMP port unreachable
        with pytest.raises(DatagramRefusedError):  # reported by the next send, which did not go out
            sink.send(b"refused:1|c")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as back:  # the exporter is back
            back.bind(("127.0.0.1", port))
            back.settimeout(5)
            sink.send(b"after:1|c")  # one refusal per ICMP error: this one goes out
            assert back.recv(100) == b"after:1|c"
        assert sink.refusals == 1
    finally:
        sink.close()


def test_after_a_udp_exporter_restart_the_zero_start_reaches_it_first_and_lost_lines_count_as_dropped():
    from statsd_instrument import Counter

    receiver = UdpCollector()
    port = receiver.port
    c = Client(port=port, strict=True)
    jobs = Counter("jobs_total", "Jobs.", tags={"queue": ("mail", "pdf")}, client=c)
    zeros = ["jobs_total:0|c|#queue:mail", "jobs_total:0|c|#queue:pdf"]
    try:
        jobs.increment(queue="mail")
        c.flush()
        assert receiver.wait_for_lines(3) == [*zeros, "jobs_total:1|c|#queue:mail"]  # the first datagram
        receiver.close()  # the exporter is down
        jobs.increment(queue="mail")
        c.flush()  # lost: nobody listens (the kernel gets an ICMP port unreachable back)
        jobs.increment(queue="mail")
        c.flush()  # the refusal of the last one is reported: sent again, zero start first, lost too
        assert c.stats["dropped_lines"] == 1 and c.stats["send_errors"] == 1
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as back:  # the exporter is back
            back.bind(("127.0.0.1", port))
            back.settimeout(5)
            jobs.increment(queue="pdf")
            c.flush()
            first = back.recv(65536).decode().split("\n")
            assert c.stats["dropped_lines"] == 2 and c.stats["send_errors"] == 2
            assert first == [*zeros, "jobs_total:1|c|#queue:pdf"]  # the zero start went first
            # the first datagram (1 increment, the 2 zero lines of the first start) and the last increment
            assert c.stats["sent_lines"] == 4
    finally:
        c.close()


class _RefusingSink:
    """Records payloads; refuses the sends listed in ``refuse`` (by their number), like a UDP sink."""

    def __init__(self, refuse: set) -> None:
        self.refuse, self.sent, self.calls = refuse, [], 0

    def send(self, payload: bytes) -> None:
        self.calls += 1
        if self.calls in self.refuse:
            raise DatagramRefusedError("refused")
        self.sent.append(payload.decode().split("\n"))

    def close(self) -> None:
        pass


def test_after_a_refusal_the_zero_start_leads_every_datagram_until_none_was_refused_for_a_while(monkeypatch):
    """Another host answers at most one datagram a second with ICMP: a send without a refusal during an
    outage proves nothing, so the zero start leads every datagram for RESTART_HOLD_S after a refusal."""
    sink = _RefusingSink(refuse={2})
    t = BufferedTransport(Settings(protocol="udp"), sink_factory=lambda settings: sink)
    now = [100.0]
    monkeypatch.setattr(transport, "_monotonic", lambda: now[0])
    for n in range(1, 5):
        if n == 2:
            t.start_lines = lambda: ["z:0|c"]  # after the first line: the first start sent none
        t.add(f"a:{n}|c")
        t.flush()
        now[0] += 1.0
    t.add("a:5|c")
    t.flush()
    assert sink.sent == [["a:1|c"], ["z:0|c", "a:2|c"], ["z:0|c", "a:3|c"], ["z:0|c", "a:4|c"], ["a:5|c"]]
    assert t.stats.dropped_lines == 1 and t.stats.sent_lines == 4  # a:1 was lost (refused later)
    t.close()


def test_a_zero_start_that_does_not_fit_the_datagram_is_sent_just_before_it():
    sink = _RefusingSink(refuse={2})
    t = BufferedTransport(Settings(protocol="udp", max_datagram_bytes=40), sink_factory=lambda settings: sink)
    t.add("a:1|c")
    t.flush()
    t.start_lines = lambda: [f"zero_{n}_total:0|c" for n in range(4)]  # 18 bytes each
    t.add("a:2|c")
    t.flush()
    assert sink.sent == [
        ["a:1|c"],
        ["zero_0_total:0|c", "zero_1_total:0|c"],
        ["zero_2_total:0|c", "zero_3_total:0|c"],
        ["a:2|c"],
    ]
    assert all(len("\n".join(lines)) <= 40 for lines in sink.sent)
    t.close()


@pytest.mark.e2e
def test_the_exit_flush_does_not_hang_on_a_lock_its_own_interrupted_thread_holds(udp_collector):
    """uwsgi's stop handlers call exit() from a signal handler: the atexit flush then runs on top of
    whatever the thread was doing, maybe inside a locked block of the buffer that will never resume."""
    code = (
        "import threading, statsd_instrument.transport as t\n"
        "from statsd_instrument import Client\n"
        f"c = Client(port={udp_collector.port}, flush_interval_s=60)\n"
        "c.increment('exit.locked')\n"
        "c._transport._lock.acquire()  # as if the signal had landed inside _put\n"
        "c._transport._sink_lock.acquire()\n"
        "t.EXIT_LOCK_WAIT_S = 0.2\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=30)  # exits, never hangs
    assert udp_collector.wait_for_lines(1, timeout_s=10) == ["exit.locked:1|c"]


def telemetry_of(lines: list[str]) -> dict:
    """{(reason, tags after it): value} of the telemetry lines among ``lines``."""
    out = {}
    for line in lines:
        if line.startswith("statsd_instrument_client_dropped:"):
            value, _, tags = line.split(":", 1)[1].partition("|c|#")
            reason, _, rest = tags.partition(",")
            out[(reason.split(":", 1)[1], rest)] = out.get((reason.split(":", 1)[1], rest), 0) + int(value)
    return out


def wait_for_telemetry(collector: UdpCollector, client: Client, want: dict, timeout_s: float = 10.0) -> dict:
    """Keep sending a legitimate line until the telemetry lines received add up to ``want``."""
    deadline = time.monotonic() + timeout_s
    while True:
        client.increment("telemetry_test_ticks")
        client.flush()
        got = telemetry_of(collector.lines())
        if all(got.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_drops_are_reported_per_reason_as_increases_with_service_and_no_pid(udp_collector):
    c = Client(port=udp_collector.port, strict=False, telemetry_interval_s=0.2, constant_tags=["env:dev"])
    c.note_service("shop")
    try:
        c.increment("go_goroutines")  # reserved_name
        c.increment("bad name")  # invalid_call
        got = wait_for_telemetry(udp_collector, c, {("reserved_name", "env:dev,service:shop"): 1})
        assert got[("invalid_call", "env:dev,service:shop")] == 1
        # the first report carries every reason, 0 when nothing was dropped: increase() sees the first drop
        assert got[("type_conflict", "env:dev,service:shop")] == 0
        assert got[("send_failed", "env:dev,service:shop")] == 0
        assert not any("pid" in tags for _, tags in got)
        before = len(udp_collector.lines())
        for _ in range(3):
            c.increment("go_goroutines")
        got = wait_for_telemetry(udp_collector, c, {("reserved_name", "env:dev,service:shop"): 4})
        later = [ln for ln in udp_collector.lines()[before:] if ln.startswith("statsd_instrument_client")]
        assert later == ["statsd_instrument_client_dropped:3|c|#reason:reserved_name,env:dev,service:shop"]
    finally:
        c.close()


def test_a_report_that_cannot_be_sent_is_sent_with_the_next_one(udp_collector):
    from statsd_instrument.transport import BufferedTransport, Settings

    attempts = []

    class FlakySink:  # the exporter is down for the first 5 sends: 3 flushes, then 2 reports
        def __init__(self, settings):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        def send(self, payload: bytes) -> None:
            attempts.append(payload)
            if len(attempts) <= 5:
                raise OSError("exporter down")
            self.sock.sendto(payload, ("127.0.0.1", udp_collector.port))

        def close(self) -> None:
            self.sock.close()

    t = BufferedTransport(Settings(telemetry_interval_s=0.05), sink_factory=FlakySink)
    t.telemetry_tags = "|#service:shop"
    try:
        for _ in range(3):
            t.add("a:1|c")
            t.flush()  # dropped: send_failed
        deadline = time.monotonic() + 10
        while len(attempts) < 6 and time.monotonic() < deadline:
            time.sleep(0.06)
            t.telemetry_due()
        got = telemetry_of(udp_collector.wait_for_lines(5))
        assert got[("send_failed", "service:shop")] == 3  # none lost with the reports that failed
    finally:
        t.close()


def test_telemetry_can_be_turned_off_and_is_reported_at_exit(udp_collector):
    off = Client(port=udp_collector.port, strict=False, telemetry_interval_s=0)
    off.increment("go_goroutines")
    off.close()
    on = Client(port=udp_collector.port, strict=False)  # 10 s: only the exit report comes in time
    on.note_service("shop")
    on.increment("go_goroutines")
    on.increment("fine")
    on.close()
    lines = udp_collector.wait_for_lines(2)
    assert lines == ["fine:1|c", "statsd_instrument_client_dropped:1|c|#reason:reserved_name,service:shop"]


def test_telemetry_needs_no_thread_where_none_may_run(udp_collector, monkeypatch):
    from statsd_instrument import transport

    monkeypatch.setattr(transport, "threads_allowed", lambda: False)  # as in a uwsgi master
    c = Client(port=udp_collector.port, strict=False, telemetry_interval_s=0.1)
    c.note_service("shop")
    try:
        c.increment("go_goroutines")
        deadline = time.monotonic() + 10
        while not telemetry_of(udp_collector.lines()) and time.monotonic() < deadline:
            c.increment("telemetry_test_ticks")  # sent at once, carrying the report when it is due
            time.sleep(0.05)
        assert telemetry_of(udp_collector.lines())[("reserved_name", "service:shop")] == 1
        assert c._transport._thread is None
    finally:
        c.close()


def test_reports_from_many_threads_add_up_to_what_was_dropped(udp_collector):
    c = Client(port=udp_collector.port, strict=False, telemetry_interval_s=0.01)
    c.note_service("shop")

    def work() -> None:
        for _ in range(200):
            c.increment("go_goroutines")
            c.increment("telemetry_test_ticks")
            c.flush()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c.close()  # the exit report carries the rest
    deadline = time.monotonic() + 10
    while telemetry_of(udp_collector.lines()).get(("reserved_name", "service:shop")) != 800:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert telemetry_of(udp_collector.lines())[("reserved_name", "service:shop")] == 800


def test_a_disabled_client_sends_no_telemetry_either(udp_collector):
    c = Client(
        port=udp_collector.port, strict=False, telemetry_interval_s=0.01, env={"DD_DOGSTATSD_DISABLE": "1"}
    )
    for _ in range(20):
        c.increment("go_goroutines")
        c.increment("fine")
        time.sleep(0.01)
    c.close()
    time.sleep(0.2)  # nothing may arrive: a bounded wait for an absence
    assert udp_collector.lines() == []
