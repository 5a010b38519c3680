"""statsd_instrument.legacy is a drop-in for the ``statsd`` package: swap the import, get the same lines.

The proof runs one program twice, once on the real ``statsd`` package and once with only its import line
swapped, each sending to its own UdpCollector, and compares the lines statement by statement (measured
timer values aside). Random sampling is seeded identically before every statement, so sampled calls must
consume ``random.random()`` exactly as the original does to match.
"""

from __future__ import annotations

import ast
import logging
import random
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest

import statsd_instrument.legacy
from statsd_instrument.legacy import StatsClient
from statsd_instrument.legacy.defaults.env import client_from_env
from tests.callbycall import between_marks, run_statement_by_statement, statements
from tests.helpers import REPO, ManagedProcess, UdpCollector, free_port, python_bin, scrape, wait_for_port

# A program written for the statsd package: every API the 4.x client offers, on a UDP client.
PROGRAM = """
from datetime import timedelta
from statsd import StatsClient

statsd = StatsClient("127.0.0.1", PORT, prefix="myapp", maxudpsize=512)
plain = StatsClient(host="127.0.0.1", port=PORT)
statsd.incr("checkout.GET.200")
statsd.incr("checkout.POST.201", 3)
statsd.incr("cart.count", 1.5)
statsd.decr("inventory.level")
statsd.decr("inventory.level", 7)
plain.incr("no.prefix")
for _ in range(20):
    statsd.incr("sampled.count", rate=0.5)
statsd.incr("rare", 2, 0.1)
statsd.gauge("queue.size", 42)
statsd.gauge("queue.size", 1.25)
statsd.gauge("temperature", -5)
for _ in range(6):
    statsd.gauge("temperature", -2, rate=0.5)
statsd.gauge("queue.size", 3, delta=True)
statsd.gauge("queue.size", -4, delta=True)
statsd.gauge("queue.size", 0, delta=True)
statsd.gauge("queue.size", 70, rate=0.5)
statsd.set("visitors", "alice")
statsd.set("visitors", 2.3, 0.5)
statsd.timing("checkout.GET.200", 320)
statsd.timing("checkout.GET.200", 12.3456789, rate=0.5)
statsd.timing("report", timedelta(seconds=1.5))
statsd.timing("report", timedelta(days=1.5))
statsd.incr("big", 1234568901234)
statsd.gauge("big", 1234568901234)
statsd.timing("big", 1234568901234)
with statsd.timer("render"):
    pass
with statsd.timer("render.sampled", rate=0.5) as timer:
    pass
@statsd.timer("decorated", rate=0.9)
def work(a, b=2):
    return a + b
work(1)
work(1, b=5)
manual = statsd.timer("manual").start()
manual.stop(send=False)
manual.send()
manual = statsd.timer("manual.sent").start().stop()
with statsd.pipeline() as pipe:
    pipe.incr("piped")
    pipe.decr("piped")
    pipe.gauge("piped.gauge", -1)
    pipe.timing("piped.time", 5)
    with pipe.timer("piped.timer"):
        pass
    inner = pipe.pipeline()
    inner.incr("piped.inner")
    inner.send()
big = statsd.pipeline()
for _ in range(40):
    big.incr("sixteen_char_str")
big.send()
statsd.pipeline().send()
"""

# stats whose values are measured durations: compared with the value masked
TIMED = {"myapp.render", "myapp.render.sampled", "myapp.decorated", "myapp.manual", "myapp.manual.sent"}
TIMED |= {"myapp.piped.timer"}


def masked(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        name = line.split(":", 1)[0]
        out.append(re.sub(r":[0-9.e+-]+\|ms", ":<ms>|ms", line) if name in TIMED else line)
    return out


def swapped(program: str) -> str:
    """The same program with only its import line changed."""
    return program.replace("from statsd import", "from statsd_instrument.legacy import", 1)


def _settle(namespace: dict, last: bool) -> None:
    """After a statement: ours batch, so hand the buffered lines over; after the last, close every client."""
    for value in namespace.values():
        if type(value).__name__ == "StatsClient":
            if last:
                value.close()
            elif hasattr(value, "flush"):  # the original has no buffer and no flush()
                value.flush()


def test_swapped_import_sends_the_original_lines_call_by_call():
    original, ours = UdpCollector(), UdpCollector()
    try:
        count = len(ast.parse(PROGRAM).body)
        run_statement_by_statement(PROGRAM, {"PORT": original.port}, original.port, _settle)
        run_statement_by_statement(swapped(PROGRAM), {"PORT": ours.port}, ours.port, _settle)
        expected = between_marks(original, count)
        got = between_marks(ours, count)
    finally:
        original.close()
        ours.close()
    assert len(expected) == len(got) == count
    for source, want, have in zip(statements(PROGRAM), expected, got):
        assert masked(have) == masked(want), f"statement {source!r}"
    sent = [line for chunk in expected for line in chunk]
    # the program exercised what it claims to: sampling both ways, negative gauges, deltas, timers
    assert 0 < sum(line.startswith("myapp.sampled.count:") for line in sent) < 20
    assert "myapp.temperature:0|g" in sent and "myapp.queue.size:+3|g" in sent
    assert sum(line.startswith("myapp.sixteen_char_str:") for line in sent) == 40
    assert any(line.startswith("myapp.decorated:") and line.endswith("|ms|@0.9") for line in sent)


ENV_PROGRAM = """
from statsd.defaults.env import statsd

statsd.incr("checkout.GET.200")
with statsd.timer("checkout.GET.200"):
    statsd.gauge("in_flight", 1, delta=True)
statsd.gauge("in_flight", -1, delta=True)
with statsd.pipeline() as pipe:
    pipe.incr("jobs.count", 2)
"""


@pytest.mark.e2e
def test_env_client_whole_program_delivers_same_lines_without_any_flush_call(tmp_path):
    """The env-configured client, as a separate process that never flushes: lines arrive by exit."""
    results = []
    for source in (
        ENV_PROGRAM,
        ENV_PROGRAM.replace("from statsd.defaults", "from statsd_instrument.legacy.defaults"),
    ):
        collector = UdpCollector()
        try:
            script = tmp_path / "program.py"
            script.write_text(source)
            env = {"STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(collector.port), "STATSD_PREFIX": "shop"}
            done = subprocess.run(
                [sys.executable, str(script)], env={**_base_env(), **env}, capture_output=True, timeout=60
            )
            assert done.returncode == 0, done.stderr.decode()
            results.append(collector.wait_for_lines(5))
        finally:
            collector.close()
    original, ours = results
    mask = {"shop.checkout.GET.200"}
    assert len(original) == 5

    def norm(lines):
        return [re.sub(r":[0-9.]+\|ms", ":<ms>|ms", ln) if ln.split(":")[0] in mask else ln for ln in lines]

    assert norm(ours) == norm(original)


def _base_env() -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("STATSD_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def test_module_exposes_the_statsd_package_names():
    import statsd

    for name in statsd.__all__:
        assert hasattr(statsd_instrument.legacy, name), name


def test_tags_argument_adds_dogstatsd_tags_after_the_sample_rate(udp_collector):
    client = StatsClient("127.0.0.1", udp_collector.port, prefix="shop", tags={"service": "shop"})
    random.seed(1)
    try:
        client.incr("checkout.GET.200", tags={"status": 200})
        client.timing("checkout", 1.5, rate=0.99, tags=["endpoint:/cart,x", "method: GET"])
        with client.pipeline() as pipe:
            pipe.gauge("stock", -2, tags=["item:hat"])
        client.flush()
        lines = udp_collector.wait_for_lines(4)
    finally:
        client.close()
    assert lines == [
        "shop.checkout.GET.200:1|c|#status:200,service:shop",
        "shop.checkout:1.500000|ms|@0.99|#endpoint:/cart_x,method:GET,service:shop",
        "shop.stock:0|g|#item:hat,service:shop",
        "shop.stock:-2|g|#item:hat,service:shop",
    ]


def test_reserved_tag_keys_refuse_the_line_and_tags_left_out_keep_it(udp_collector, caplog):
    # one rule with the Client (statsd_instrument.validation): a reserved key refuses the call (logged,
    # never raised); a bare tag or an empty value is left out and the line is sent
    client = StatsClient("127.0.0.1", udp_collector.port)
    try:
        with caplog.at_level(logging.WARNING, logger="statsd_instrument.legacy"):
            client.incr("hits", tags={"le": "1", "ok": "yes"})
            client.incr("hits", tags={"__name__": "x"})
            client.incr("kept", tags=["vip", "kind:", "availability-zone:eu-1a"])
        client.flush()
        assert udp_collector.wait_for_lines(1) == ["kept:1|c|#availability_zone:eu-1a"]
    finally:
        client.close()
    assert "'le'" in caplog.text and "'__name__'" in caplog.text


def test_bad_values_are_dropped_and_logged_never_raised(udp_collector, caplog):
    client = StatsClient("127.0.0.1", udp_collector.port)
    try:
        with caplog.at_level(logging.WARNING, logger="statsd_instrument.legacy"):
            client.timing("slow", "fast")
            client.gauge("level", None)
            client.decr("left", "x")
            client.incr("bad\nname")
            client.incr("good")
        client.flush()
        assert udp_collector.wait_for_lines(1) == ["good:1|c"]
    finally:
        client.close()
    assert "timing('slow')" in caplog.text and "'fast'" in caplog.text


def test_timer_misuse_raises_like_the_original():
    pipe = StatsClient("127.0.0.1", 8125).pipeline()
    with pytest.raises(RuntimeError, match="Timer has not started"):
        pipe.timer("x").stop()
    timer = pipe.timer("x").start()
    with pytest.raises(RuntimeError, match="No data recorded"):
        timer.send()


def test_async_function_timer_reports_after_the_coroutine_finished():
    import asyncio

    pipe = StatsClient("127.0.0.1", 8125).pipeline()
    finished = []

    @pipe.timer("job")
    async def job():
        await asyncio.sleep(0)
        finished.append(len(pipe._stats))
        return 7

    assert asyncio.run(job()) == 7
    assert finished == [0] and len(pipe._stats) == 1 and pipe._stats[0].endswith("|ms")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("STATSD_PORT", "http"), ("STATSD_PORT", "70000"), ("STATSD_MAXUDPSIZE", "-1"), ("STATSD_IPV6", "yes")],
)
def test_bad_environment_value_fails_naming_variable_and_value(variable, value):
    with pytest.raises(ValueError) as failure:
        client_from_env({variable: value})
    assert str(failure.value).startswith(f"{variable}={value!r} ")
    assert "\n" not in str(failure.value)


def test_env_client_reads_every_variable():
    client = client_from_env(
        {
            "STATSD_HOST": "localhost",
            "STATSD_PORT": "9125",
            "STATSD_PREFIX": "shop",
            "STATSD_MAXUDPSIZE": "1400",
        }
    )
    try:
        assert (client._addr, client._prefix, client._maxudpsize) == (("127.0.0.1", 9125), "shop", 1400)
    finally:
        client.close()


def test_unresolvable_host_does_not_raise(caplog):
    with caplog.at_level(logging.WARNING, logger="statsd_instrument.legacy"):
        client = StatsClient("no-such-host.invalid", 8125)
    client.close()
    assert "no-such-host.invalid" in caplog.text


STREAM_PROGRAM = """
statsd.incr("checkout.GET.200")
statsd.gauge("temperature", -5)
statsd.timing("render", 12.5, rate=0.5)
with statsd.pipeline() as pipe:
    pipe.incr("piped", 2)
    pipe.gauge("depth", 3, delta=True)
statsd.set("visitors", "bob")
"""


class TcpLines:
    """Accepts TCP connections on 127.0.0.1 and keeps every newline-terminated line received."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.data = b""
        self._done = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conns = []
        while not self._done:
            try:
                conn, _ = self.server.accept()
                conn.settimeout(0.05)
                conns.append(conn)
            except socket.timeout:
                pass
            for conn in conns:
                try:
                    self.data += conn.recv(65536)
                except socket.timeout:
                    pass
        for conn in conns:
            conn.close()

    def lines(self, n: int) -> list:
        deadline = time.monotonic() + 10
        while self.data.count(b"\n") < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.data.decode().splitlines()

    def close(self) -> None:
        self._done = True
        self._thread.join(2)
        self.server.close()


def test_tcp_client_sends_the_original_lines():
    import statsd as original_statsd

    results = []
    for module in (original_statsd, statsd_instrument.legacy):
        server = TcpLines()
        client = module.TCPStatsClient("127.0.0.1", server.port, prefix="shop", timeout=2)
        try:
            random.seed(4)
            exec(STREAM_PROGRAM, {"statsd": client})
            client.close()  # ours: flushes; the original: closes its connection
            results.append(server.lines(7))
        finally:
            client.close()
            server.close()
    original, ours = results
    assert len(original) == 7 and ours == original


def test_unix_socket_client_sends_the_original_lines_as_datagrams(tmp_path):
    import statsd as original_statsd

    pipe = original_statsd.StatsClient("127.0.0.1", 8125, prefix="shop").pipeline()
    random.seed(4)
    exec(STREAM_PROGRAM, {"statsd": pipe})
    pipe._client.close()
    expected = [line for datagram in pipe._stats for line in datagram.split("\n")]
    collector = UdpCollector(unix_path=str(tmp_path / "statsd.sock"))
    client = statsd_instrument.legacy.UnixSocketStatsClient(str(tmp_path / "statsd.sock"), prefix="shop")
    try:
        random.seed(4)
        exec(STREAM_PROGRAM, {"statsd": client})
        client.flush()
        assert collector.wait_for_lines(len(expected)) == expected
    finally:
        client.close()
        collector.close()


def test_ipv6_client_sends_to_the_ipv6_address():
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sink:
        sink.bind(("::1", 0))
        sink.settimeout(10)
        client = StatsClient("::1", sink.getsockname()[1], ipv6=True, prefix="v6")
        try:
            client.incr("hits")
            client.flush()
            assert sink.recv(512) == b"v6.hits:1|c"
        finally:
            client.close()


def test_lines_are_batched_into_datagrams_no_larger_than_maxudpsize(udp_collector):
    client = StatsClient("127.0.0.1", udp_collector.port, prefix="shop", maxudpsize=200)
    try:
        for index in range(60):
            client.incr(f"batched.{index}")
        client.flush()
        lines = udp_collector.wait_for_lines(60)
    finally:
        client.close()
    assert lines == [f"shop.batched.{index}:1|c" for index in range(60)]
    assert len(udp_collector.datagrams) < 60 / 5
    assert max(len(d) for d in udp_collector.datagrams) <= 200


FORK_PROGRAM = """
import os, sys
from statsd_instrument.legacy import StatsClient

statsd = StatsClient("127.0.0.1", int(sys.argv[1]), prefix="app")
statsd.incr("parent.before_fork")
pid = os.fork()
if pid == 0:
    statsd.incr("child.work")
    sys.exit(0)
os.waitpid(pid, 0)
statsd.incr("parent.after_fork")
"""


@pytest.mark.e2e
def test_forked_worker_never_resends_parent_lines_and_both_flush_at_exit(udp_collector, tmp_path):
    script = tmp_path / "fork_program.py"
    script.write_text(FORK_PROGRAM)
    done = subprocess.run(
        [sys.executable, str(script), str(udp_collector.port)],
        env=_base_env(),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    lines = udp_collector.wait_for_lines(3)
    time.sleep(0.3)  # a duplicate would arrive right behind
    assert sorted(udp_collector.lines()) == [
        "app.child.work:1|c",
        "app.parent.after_fork:1|c",
        "app.parent.before_fork:1|c",
    ]
    assert lines


@pytest.mark.e2e
def test_legacy_names_come_out_as_the_documented_series_through_the_exporter(tmp_path):
    """The embedded exporter with the shipped mapping: legacy dotted names and new tagged calls land on
    the same Prometheus series (docs/migrating.md, step 3)."""
    from statsd_instrument import Client

    udp, web = free_port(socket.SOCK_DGRAM), free_port()
    exporter = ManagedProcess(
        [
            python_bin("statsd-instrument"), "exporter", f"--statsd.listen-udp=127.0.0.1:{udp}",
            "--statsd.listen-tcp=", f"--web.listen-address=127.0.0.1:{web}",
            f"--statsd.mapping-config={REPO / 'exporter-mapping.yml'}",
        ],
        log=tmp_path / "exporter.log",
    )  # fmt: skip
    legacy = StatsClient("127.0.0.1", udp, prefix="shop")
    new = Client(host="127.0.0.1", port=udp, protocol="udp", prefix="")
    try:
        wait_for_port(web, proc=exporter.proc)
        for _ in range(3):
            legacy.incr("checkout.GET.200")
        legacy.timing("checkout.GET.200", 12.5)
        legacy.timing("checkout.GET.200", timedelta(milliseconds=40))
        legacy.incr("checkout.POST.302")
        legacy.incr("signups.count", 2)
        legacy.timing("report.time", 840)
        legacy.incr("unknown.shape")
        request = {"service": "shop", "endpoint": "checkout", "method": "GET", "status": "200"}
        new.increment("request_count", tags=request)
        new.increment("request_count", tags=request)
        legacy.flush()
        new.flush()
        labels = tuple(sorted(request.items()))
        deadline = time.monotonic() + 10
        while True:
            series = scrape(f"http://127.0.0.1:{web}/metrics")
            if series.get(("http_requests_total", labels)) == 5 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        legacy.close()
        new.close()
        code = exporter.stop()
    assert series[("http_requests_total", labels)] == 5  # 3 legacy + 2 new, one series
    post = {**request, "method": "POST", "status": "302"}
    assert series[("http_requests_total", tuple(sorted(post.items())))] == 1
    assert series[("http_request_duration_seconds_count", labels)] == 2
    assert series[("http_request_duration_seconds_sum", labels)] == pytest.approx(0.0525)
    assert (
        series[("http_request_duration_seconds_bucket", tuple(sorted({**request, "le": "0.025"}.items())))]
        == 1
    )
    assert series[("signups_total", (("service", "shop"),))] == 2
    assert series[("report_duration_seconds_count", (("service", "shop"),))] == 1
    assert series[("report_duration_seconds_sum", (("service", "shop"),))] == pytest.approx(0.84)
    # no recipe: the escaped dotted name, as statsd_exporter does (the parser names counter samples *_total)
    assert series[("shop_unknown_shape_total", ())] == 1
    assert code == 0, exporter.output()


# -- differential: the same programs on the statsd package and on ours, each into an embedded exporter -------

LEGACY_HEADER = "from statsd import StatsClient, TCPStatsClient\n"
LEGACY_SETUP = (
    'statsd = StatsClient("127.0.0.1", PORT, prefix="shop")\n'
    "plain = StatsClient(host='127.0.0.1', port=PORT, maxudpsize=1400)\n"
    'tcp = TCPStatsClient("127.0.0.1", TCP_PORT, prefix="tcp", timeout=2)\n'
)
LEGACY_PROGRAMS = [
    'statsd.incr("checkout.GET.200")',
    'statsd.incr("checkout.POST.201", 3)',
    'statsd.incr("signups.count", rate=0.99)',
    'statsd.decr("stock.count")',
    'statsd.gauge("queue.size", 42)',
    'statsd.gauge("queue.size", 3, delta=True)',
    'statsd.gauge("queue.size", -4, delta=True)',
    'statsd.gauge("temperature", -5)',
    'statsd.gauge("ratio", 0.5, rate=0.9)',
    'statsd.set("visitors", "alice")',
    'statsd.timing("checkout.GET.200", 320)',
    'statsd.timing("report.time", 12.5, rate=0.5)',
    'statsd.timing("report.time", timedelta(seconds=1.5))',
    'with statsd.timer("render.time"):\n    pass',
    '@statsd.timer("job.time")\ndef job():\n    return 1\njob()',
    't = statsd.timer("manual.time").start()\nt.stop()',
    't = statsd.timer("manual.time").start()\nt.stop(send=False)\nt.send()',
    'plain.incr("no.prefix")',
    'with statsd.pipeline() as pipe:\n    pipe.incr("piped.count")\n    pipe.timing("piped.time", 5)\n'
    '    pipe.gauge("piped.depth", -1)',
    'pipe = statsd.pipeline()\nfor _ in range(50):\n    pipe.incr("bulk.count")\npipe.send()',
    'with statsd.pipeline() as pipe:\n    inner = pipe.pipeline()\n    inner.incr("nested.count")\n'
    "    inner.send()",
    'tcp.incr("checkout.GET.200")\ntcp.gauge("tcp.depth", 7)',
    'with tcp.pipeline() as pipe:\n    pipe.incr("signups.count", 2)\n    pipe.timing("tcp.time", 40)',
]


@pytest.fixture(scope="module")
def legacy_sides(tmp_path_factory):
    """(statsd side, our side) with one setup program run, and a stepping clock in both timers."""
    import statsd.client.timer

    import statsd_instrument.legacy.timer as our_timer
    from tests.differential import Program, Side, run

    tmp = tmp_path_factory.mktemp("legacy")
    ticks = iter(range(10**6))
    clock = lambda: 500.0 + 0.125 * next(ticks)  # noqa: E731
    saved = (statsd.client.timer.time_now, our_timer.time)
    statsd.client.timer.time_now = clock
    our_timer.time = type("Clock", (), {"perf_counter": staticmethod(clock)})
    theirs, ours = Side("statsd", str(tmp / "t.sock")), Side("ours", str(tmp / "o.sock"))
    try:
        for side in (theirs, ours):
            side.namespace.update(TCP_PORT=side.exporter.tcp_port, timedelta=timedelta)
            source = LEGACY_HEADER + LEGACY_SETUP
            run(side, Program(source), swapped(source) if side is ours else source, -1, _legacy_flush)
        yield theirs, ours
    finally:
        statsd.client.timer.time_now, our_timer.time = saved
        for side in (theirs, ours):
            for value in side.namespace.values():
                if hasattr(value, "close") and type(value).__name__.endswith("StatsClient"):
                    value.close()
            side.close()


def _legacy_flush(namespace: dict) -> None:
    for value in namespace.values():
        if hasattr(value, "flush") and type(value).__name__.endswith("StatsClient"):
            value.flush()  # ours batch; the original sent at once and has no flush()


@pytest.mark.e2e
@pytest.mark.parametrize("index", range(len(LEGACY_PROGRAMS)), ids=[p[:50] for p in LEGACY_PROGRAMS])
def test_legacy_program_exports_the_same_series_and_lines_as_the_statsd_package(legacy_sides, index):
    from tests.differential import Program, run

    theirs_side, ours_side = legacy_sides
    source = LEGACY_HEADER + LEGACY_PROGRAMS[index]
    theirs_lines, theirs_series = run(theirs_side, Program(source), source, index, _legacy_flush)
    ours_lines, ours_series = run(ours_side, Program(source), swapped(source), index, _legacy_flush)
    assert ours_lines == theirs_lines
    assert ours_series == theirs_series
    if not LEGACY_PROGRAMS[index].startswith(("statsd.set", "statsd.decr")):  # no sets; no negative counts
        assert ours_series, "the program exports something"


def test_maxudpsize_no_datagram_can_carry_fails_at_construction():
    for size in (40, 0, 70000, "512"):
        with pytest.raises(ValueError, match=rf"^maxudpsize={size!r}: expected an integer 64-65507"):
            StatsClient("127.0.0.1", 8125, maxudpsize=size)
    with pytest.raises(ValueError, match=r"^STATSD_MAXUDPSIZE='40' "):
        client_from_env({"STATSD_MAXUDPSIZE": "40"})
    StatsClient("127.0.0.1", 8125, maxudpsize=64).close()


def test_timeout_bounds_the_tcp_connect_and_the_unix_send(tmp_path):
    from statsd_instrument.legacy import TCPStatsClient, UnixSocketStatsClient
    from statsd_instrument.sinks import make_sink

    tcp = TCPStatsClient("127.0.0.1", 9, timeout=0.25)
    unix = UnixSocketStatsClient(str(tmp_path / "none.sock"), timeout=0.5)
    try:
        tcp.connect()
        unix.connect()
        assert tcp._client.settings.timeout_s == 0.25 and unix._client.settings.timeout_s == 0.5
        assert make_sink(tcp._client.settings).timeout_s == 0.25
        assert make_sink(unix._client.settings).wait_s == 0.5
    finally:
        tcp.close()
        unix.close()


def test_defaults_django_reads_django_settings_like_the_original(udp_collector):
    from django.conf import settings

    if not settings.configured:
        settings.configure()
    values = dict(STATSD_HOST="127.0.0.1", STATSD_PORT=udp_collector.port, STATSD_PREFIX="dj")
    for name, value in values.items():
        setattr(settings, name, value)
    try:
        import statsd.defaults.django as original

        from statsd_instrument.legacy.defaults.django import statsd as ours

        original.statsd.incr("views.count")
        ours.incr("views.count")
        ours.flush()
        assert udp_collector.wait_for_lines(2) == ["dj.views.count:1|c", "dj.views.count:1|c"]
        assert ours._maxudpsize == original.statsd._maxudpsize == 512
        original.statsd._sock.close()
    finally:
        for name in values:
            delattr(settings, name)
