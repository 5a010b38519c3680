"""Fault injection under real uwsgi (5 workers) with steady bounded traffic: what each fault costs.

Each test runs tests/apps/fault_app.py under uwsgi with 5 workers, pushing to the embedded exporter (the
shipped mapping), sends paced GETs with ``statsd_instrument.stack.traffic.Traffic`` (every answer recorded
with its time and round trip), injects one fault and checks what it cost: failed requests, blocked workers,
lost lines (against the requests served, and the clients' own counters written at exit), memory.
Each prints one ``FIGURE`` line; docs/reliability.md quotes them with the command that produced them.
Speed is reported, never asserted; bounds on latency are generous and only catch a blocked worker.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from statsd_instrument.sinks import RESOLVE_RETRY_S
from statsd_instrument.stack.commands import exporter_argv
from statsd_instrument.stack.files import find_stack_files
from statsd_instrument.stack.prometheus import (
    PrometheusAPI,
    PromQLError,
    derive_config,
    find_prometheus,
    prometheus_argv,
)
from statsd_instrument.stack.traffic import Route, Traffic
from tests.helpers import (
    REPO,
    ManagedProcess,
    free_port,
    http_get,
    process_tree,
    python_bin,
    scrape,
    wait_for_port,
)

pytestmark = pytest.mark.e2e

MAPPING = REPO / "exporter-mapping.yml"
WORK = (Route(1, "GET", "/work"),)
#: a request that takes longer than this is a worker blocked by metrics (the requests themselves take ~1 ms)
BLOCKED_S = 2.0
#: how long a line may still be on its way after its request was answered (flush window + scheduling)
IN_FLIGHT_S = 1.0


class ExporterProcess:
    """The embedded exporter as its own process, on ports (or a unixgram path) that survive restarts."""

    def __init__(self, tmp_path: Path, unixgram: str = "", extra: tuple = (), udp_host: str = "") -> None:
        self.tmp_path, self.unixgram, self.extra, self.udp_host = tmp_path, unixgram, extra, udp_host
        self.udp_port, self.web_port = free_port(socket.SOCK_DGRAM), free_port()
        self.proc: ManagedProcess | None = None
        self.starts = 0

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/metrics"

    def start(self) -> ExporterProcess:
        argv = exporter_argv(MAPPING, self.udp_port, self.web_port) + list(self.extra)
        if self.unixgram:
            argv += ["--statsd.listen-udp=", f"--statsd.listen-unixgram={self.unixgram}"]
        if self.udp_host:
            argv += [f"--statsd.listen-udp={self.udp_host}:{self.udp_port}"]
        self.starts += 1
        self.proc = ManagedProcess(argv, log=self.tmp_path / f"exporter-{self.starts}.log")
        wait_for_port(self.web_port, proc=self.proc.proc)
        return self

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.proc.wait(10)
        self.proc.stop()

    def kill_and_restart(self, down_s: float, cleanup=None) -> tuple[float, float, float]:
        """SIGKILL, run ``cleanup``, wait ``down_s``, start again; (killed, restarting, up) monotonic."""
        killed_at = time.monotonic()
        self.kill()
        if cleanup is not None:
            cleanup()
        time.sleep(down_s)
        restart_at = time.monotonic()
        self.start()
        return killed_at, restart_at, time.monotonic()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


class App:
    """tests/apps/fault_app.py under uwsgi (master + 5 workers) on 127.0.0.1, stopped gracefully by pid."""

    def __init__(
        self, tmp_path: Path, env: dict, *uwsgi_flags: str, host: str = "127.0.0.1", prefix: tuple = ()
    ) -> None:
        self.host, self.port = host, free_port()
        self.stats_dir = tmp_path / "client-stats"
        self.stats_dir.mkdir()
        self.proc = ManagedProcess(
            [
                *prefix,  # a command that runs the rest elsewhere (a network namespace), exec'ing it
                python_bin("uwsgi"),
                "--master",
                "--processes",
                "5",
                "--http-socket",
                f"{host}:{self.port}",
                "--chdir",
                str(REPO / "tests" / "apps"),
                "--module",
                "fault_app:app",
                "--die-on-term",
                "--need-app",
                "--disable-logging",
                *uwsgi_flags,
            ],
            env={**env, "FAULTS_STATS_DIR": str(self.stats_dir)},
            log=tmp_path / "uwsgi.log",
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.proc.poll() is None:
            try:
                if http_get(f"{self.url}/pid", timeout_s=2)[0] == 200 and len(self.workers()) == 5:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert len(self.workers()) == 5, self.proc.output()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def serve_out(self, traffic: Traffic) -> set[int]:
        """Wait until ``traffic`` has sent everything; the worker pids then."""
        traffic.wait(60)
        return self.workers()

    def workers(self) -> set[int]:
        """Pids of the master's children (the uwsgi workers)."""
        return process_tree(self.proc.pid) - {self.proc.pid}

    def stop(self) -> dict:
        """Stop gracefully (workers flush and write their client stats); the stats summed over processes."""
        self.proc.stop(signal.SIGTERM)
        totals: dict = {}
        for path in self.stats_dir.glob("*.json"):
            for key, value in json.loads(path.read_text()).items():
                if isinstance(value, int):  # counters; per-reason breakdowns (dicts) are left out
                    totals[key] = totals.get(key, 0) + value
        return totals


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def counted(metrics_url: str, endpoint: str = "/work") -> float:
    """``http_requests_total`` of the fault app's ``endpoint`` on one exporter page."""
    return sum(
        value
        for (name, labels), value in scrape(metrics_url).items()
        if name == "http_requests_total"
        and dict(labels).get("service") == "faults"
        and dict(labels).get("endpoint") == endpoint
    )


def settled(read, timeout_s: float = 10.0) -> float:
    """Poll ``read()`` until two readings 1 s apart agree (lines still in flight have arrived)."""
    deadline = time.monotonic() + timeout_s
    last = read()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        value = read()
        if value == last:
            return value
        last = value
    return last


def answered_between(traffic: Traffic, start: float, end: float) -> int:
    return sum(1 for t, _, status, _ in traffic.answers if status == 200 and start <= t <= end)


def p99_ms(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) >= 2 else float("nan")


def assert_no_request_failed_or_blocked(traffic: Traffic) -> None:
    statuses = {status for _, _, status, _ in traffic.answers}
    assert statuses == {200}, statuses
    slowest = max(elapsed for _, elapsed, _, _ in traffic.answers)
    assert slowest < BLOCKED_S, f"a request took {slowest:.2f} s: a worker waited on metrics"


def assert_served_without_a_worker_restart(traffic: Traffic, app: App, workers: set, after: set) -> None:
    assert_no_request_failed_or_blocked(traffic)
    assert after == workers and "Respawned" not in app.proc.output()


def assert_counting_resumed(traffic: Traffic, total: float, fixed_at: float, counts_from: float) -> None:
    """None of the requests answered before the fault was fixed is counted, all from ``counts_from`` are."""
    assert answered_between(traffic, counts_from + IN_FLIGHT_S, float("inf")) <= total
    assert total <= answered_between(traffic, fixed_at, float("inf"))


def figure(text: str) -> None:
    print(f"\nFIGURE {text}")


@pytest.fixture
def exporters(tmp_path):
    """Make ``ExporterProcess`` objects (not started) that are stopped when the test ends."""
    made: list[ExporterProcess] = []

    def make(**options) -> ExporterProcess:
        made.append(ExporterProcess(tmp_path, **options))
        return made[-1]

    yield make
    for proc in made:
        proc.stop()


@pytest.fixture
def exporter(exporters):
    return exporters().start()


def udp_env(exporter: ExporterProcess) -> dict:
    return {"STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(exporter.udp_port)}


def start_prometheus(tmp_path: Path, exporter: ExporterProcess) -> tuple[ManagedProcess, PrometheusAPI]:
    binary = find_prometheus()
    assert binary, "prometheus is not installed (scripts/system-deps.sh installs Debian's package)"
    port = free_port()
    config = derive_config(
        find_stack_files().prometheus_yml,
        tmp_path / "prom",
        f"127.0.0.1:{exporter.web_port}",
        scrape_interval="1s",
        evaluation_interval="1s",
        rule_files=[],
    )
    proc = ManagedProcess(
        prometheus_argv(binary, config, tmp_path / "prom-data", port), log=tmp_path / "prometheus.log"
    )
    api = PrometheusAPI(f"http://127.0.0.1:{port}", timeout_s=5)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if api.targets_up() == 1:
                return proc, api
        except PromQLError:  # not listening yet
            pass
        time.sleep(0.5)
    proc.stop()
    raise AssertionError(f"Prometheus did not come up: {proc.output()[-2000:]}")


def reset_aware_total(series: list) -> float:
    """What a counter counted over stored samples: every increase, a reset counting its new value in full.

    The series are new (the exporter starts empty), so the first sample counts in full too.
    """
    total = 0.0
    for _, values in series:
        previous = 0.0
        for _, value in values:
            total += value - previous if value >= previous else value
            previous = value
    return total


def test_exporter_killed_and_restarted_costs_only_the_lines_of_its_downtime(exporter, tmp_path):
    prom, api = start_prometheus(tmp_path, exporter)
    try:
        app = App(tmp_path, udp_env(exporter))
        try:
            traffic = Traffic(app.url, rate_per_s=60, mix=WORK, total=840, record=True).start()
            time.sleep(4)
            killed_at, restart_at, up_at = exporter.kill_and_restart(5)
            workers_after = app.serve_out(traffic)
        finally:
            client = app.stop()
        selector = 'http_requests_total{service="faults",endpoint="/work"}'
        settled(lambda: counted(exporter.metrics_url))
        time.sleep(2.5)  # two more scrapes of the final value
        series = api.raw_samples(selector, 120, time.time())
        total = reset_aware_total(series)
        # Prometheus' own increase() from the first stored sample to the last (no extrapolation needed)
        (_, values) = series[0]
        first_t, first_v = values[0]
        span_ms = round((values[-1][0] - first_t) * 1000)
        increase = api.scalar(f"sum(increase({selector}[{span_ms}ms]))", at=values[-1][0])
        resets = api.scalar(f"sum(resets({selector}[{span_ms + 1000}ms]))", at=values[-1][0])
    finally:
        prom.stop()
    assert_no_request_failed_or_blocked(traffic)
    assert len(series) == 1 and len(workers_after) == 5
    served = answered_between(traffic, 0, float("inf"))
    lost = served - total
    # nothing is listening between the kill and the new exporter's start: those lines are lost for sure
    surely_lost = answered_between(traffic, killed_at + IN_FLIGHT_S, restart_at)
    # at most: what the killed exporter counted after Prometheus' last scrape (1 s), and what was in flight
    # around the kill and the restart
    maybe_lost = answered_between(traffic, killed_at - 1.0 - IN_FLIGHT_S, up_at + IN_FLIGHT_S)
    assert surely_lost <= lost <= maybe_lost, (surely_lost, lost, maybe_lost)
    # the clients counted what they lost (2 lines a request): each datagram nobody received is reported by
    # the next send on the connected UDP socket (ICMP port unreachable); what the killed exporter had received
    # but Prometheus had not scraped yet no sender can see
    assert 2 * surely_lost <= client["dropped_lines"] <= 2 * lost, (client, surely_lost, lost)
    # the restart is one counter reset, which increase() bridges: it neither drops nor double-counts
    assert resets == 1
    assert increase == pytest.approx(total - first_v, abs=1e-6)
    warm = traffic.answers[0][0] + 1.0  # each worker's first requests (imports, first sends) are slower
    down = [e for t, e, _, _ in traffic.answers if killed_at <= t <= up_at]
    up = [e for t, e, _, _ in traffic.answers if t >= warm and not killed_at <= t <= up_at]
    figure(
        f"exporter SIGKILLed for {restart_at - killed_at:.1f} s (+{up_at - restart_at:.1f} s to restart): "
        f"{served} requests served, none failed; Prometheus counted {total:.0f}, lost {lost:.0f} "
        f"(served while down: {surely_lost} surely lost .. {maybe_lost} at most); increase() over the run "
        f"{increase:.0f} + first sample {first_v:.0f}; client stats: {client}; "
        f"p99 {p99_ms(up):.1f} ms up / {p99_ms(down):.1f} ms down, max {max(up + down) * 1000:.0f} ms"
    )


def test_exporter_stopped_for_10_s_blocks_no_worker_and_grows_no_memory(exporter, tmp_path):
    app = App(tmp_path, udp_env(exporter))
    try:
        traffic = Traffic(app.url, rate_per_s=60, mix=WORK, total=1080, record=True).start()
        time.sleep(4)
        rss_before = {pid: rss_kib(pid) for pid in app.workers()}
        stopped_at = time.monotonic()
        exporter.signal(signal.SIGSTOP)
        try:
            time.sleep(10)
            rss_stopped = {pid: rss_kib(pid) for pid in app.workers()}
        finally:
            exporter.signal(signal.SIGCONT)
        continued_at = time.monotonic()
        workers_after = app.serve_out(traffic)
    finally:
        client = app.stop()
    assert_no_request_failed_or_blocked(traffic)
    assert set(rss_stopped) == set(rss_before) == workers_after  # no worker restarted
    growth_kib = max(rss_stopped[pid] - rss_before[pid] for pid in rss_before)
    assert growth_kib < 16 * 1024, f"a worker grew by {growth_kib} KiB while the exporter was stopped"
    served = answered_between(traffic, 0, float("inf"))
    total = settled(lambda: counted(exporter.metrics_url))
    warm = traffic.answers[0][0] + 1.0  # each worker's first requests (imports, first sends) are slower
    before = [e for t, e, _, _ in traffic.answers if warm <= t < stopped_at]
    during = [e for t, e, _, _ in traffic.answers if stopped_at <= t <= continued_at]
    figure(
        f"exporter SIGSTOPped {continued_at - stopped_at:.1f} s: {served} requests served, none failed; "
        f"p99 {p99_ms(before):.1f} ms before / {p99_ms(during):.1f} ms stopped, max "
        f"{max(before + during) * 1000:.0f} ms; worker RSS growth max {growth_kib} KiB; exporter counted "
        f"{total:.0f} after SIGCONT (the kernel held the backlog); client stats: {client}"
    )


def test_unixgram_socket_recreated_by_a_restarted_exporter_is_used_without_a_worker_restart(
    exporters, tmp_path
):
    path = str(tmp_path / "statsd.sock")
    exporter = exporters(unixgram=path).start()
    app = App(tmp_path, {"STATSD_SOCKET": path})
    try:
        workers = app.workers()
        traffic = Traffic(app.url, rate_per_s=40, mix=WORK, total=480, record=True).start()
        time.sleep(3)
        # the socket file goes as a restart script removes it: the exporter refuses an existing one
        killed_at, restart_at, up_at = exporter.kill_and_restart(3, cleanup=lambda: os.unlink(path))
        workers_after = app.serve_out(traffic)
    finally:
        client = app.stop()
    total = settled(lambda: counted(exporter.metrics_url))
    assert_served_without_a_worker_restart(traffic, app, workers, workers_after)
    assert_counting_resumed(traffic, total, restart_at, counts_from=up_at)  # once the new exporter listened
    # the client saw the socket gone: it counted what it could not send
    down = answered_between(traffic, killed_at + IN_FLIGHT_S, restart_at)
    assert client["dropped_lines"] >= down > 0, (client, down)
    figure(
        f"unixgram socket removed for {restart_at - killed_at:.1f} s and recreated: {len(traffic.answers)} "
        f"requests, none failed, no worker restarted; the new exporter counted {total:.0f} (answered after "
        f"its start: {answered_between(traffic, restart_at, float('inf'))}); client stats: {client}"
    )


def test_harakiri_costs_only_the_metrics_of_the_request_it_kills(exporter, tmp_path):
    app = App(tmp_path, udp_env(exporter), "--harakiri", "2")
    try:
        workers = app.workers()
        traffic = Traffic(app.url, rate_per_s=40, mix=WORK, total=320, record=True).start()
        time.sleep(2)
        slow: list = []

        def slow_request() -> None:
            try:
                slow.append(http_get(f"{app.url}/slow?s=30", timeout_s=20))
            except OSError as err:  # the worker died under it: no answer
                slow.append(err)

        killer = threading.Thread(target=slow_request)
        killer.start()
        deadline = time.monotonic() + 15
        while "HARAKIRI ON WORKER" not in app.proc.output() and time.monotonic() < deadline:
            time.sleep(0.2)
        killer.join(20)
        workers_after = app.serve_out(traffic)
    finally:
        app.stop()
    assert "HARAKIRI ON WORKER" in app.proc.output(), app.proc.output()[-2000:]
    assert len(slow) == 1 and isinstance(slow[0], OSError), slow  # the killed request got no answer
    assert len(workers & workers_after) == 4  # exactly one worker was killed and replaced
    assert_no_request_failed_or_blocked(traffic)
    served = answered_between(traffic, 0, float("inf"))
    total = settled(lambda: counted(exporter.metrics_url))
    assert total == served  # every other request, on every worker, counted
    assert counted(exporter.metrics_url, "/slow") == 0  # the killed request: its metrics never left
    figure(
        f"harakiri (2 s) killed a worker in GET /slow: {served} other requests served and {total:.0f} "
        f"counted; /slow counted {counted(exporter.metrics_url, '/slow'):.0f}"
    )


def test_flood_of_100k_names_is_bounded_counted_and_scrapes_keep_working(exporters, tmp_path):
    limit = 5_000  # the default is 20,000; a smaller one keeps the pages of this test quick to render
    exporter = exporters(extra=(f"--emulation.max-series={limit}",)).start()
    app = App(tmp_path, udp_env(exporter))
    try:
        traffic = Traffic(app.url, rate_per_s=30, mix=WORK, total=60, record=True).start()
        deadline = time.monotonic() + 10
        while not counted(exporter.metrics_url) and time.monotonic() < deadline:
            time.sleep(0.1)  # the app's series exist before the flood fills the store
        rss_start = rss_kib(exporter.proc.pid)
        scrapes: list = []
        flooding = threading.Event()
        flooding.set()

        def scrape_meanwhile() -> None:
            while flooding.is_set():
                status, body = http_get(exporter.metrics_url, timeout_s=30)
                assert status == 200
                scrapes.append(sum(1 for _ in text_string_to_metric_families(body.decode())))
                time.sleep(0.5)

        scraper = threading.Thread(target=scrape_meanwhile)
        scraper.start()
        sent = flood(exporter.udp_port, 100_000)
        # scrapes go on while the exporter works through what the kernel buffered
        settled(lambda: scrape(exporter.metrics_url)[("statsd_exporter_lines_total", ())], timeout_s=60)
        flooding.clear()
        scraper.join(60)
        traffic.wait(60)
        before = settled(lambda: counted(exporter.metrics_url))
        after_flood = Traffic(app.url, rate_per_s=30, mix=WORK, total=30).start().wait(60)
        delta = settled(lambda: counted(exporter.metrics_url)) - before
        peak_kib = rss_kib(exporter.proc.pid, "VmHWM")
        page = scrape(exporter.metrics_url)
    finally:
        app.stop()
    assert sent == 100_000 and len(scrapes) >= 3
    refused = page[("statsd_exporter_events_error_total", (("reason", "series_limit"),))]
    kept = sum(v for (name, _), v in page.items() if name == "statsd_exporter_metrics_total")
    flood_kept = sum(1 for (name, _), _v in page.items() if name.startswith("flood_"))
    received = flood_kept + refused  # every flood line is a new name: kept, or refused at the limit
    assert kept <= limit and refused > 0 and flood_kept > 0
    assert after_flood.answered == delta == 30  # the app's series keep counting after the flood
    assert peak_kib < 256 * 1024, f"the exporter peaked at {peak_kib} KiB"
    figure(
        f"flood of {sent} distinct names: {received:.0f} received ({sent - received:.0f} dropped by the "
        f"kernel's full socket buffer), {kept:.0f} series kept (limit {limit}), {refused:.0f} refused "
        f"(series_limit); {len(scrapes)} scrapes during the flood, all parsed; exporter RSS "
        f"{rss_start // 1024} MiB at start, peak {peak_kib // 1024} MiB; after the flood {delta:.0f} of 30 "
        f"new requests counted"
    )


def flood(port: int, names: int) -> int:
    """Send ``names`` distinct counter names to 127.0.0.1:``port`` as fast as possible; returns lines sent."""
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        batch: list = []
        size = 0
        for i in range(names):
            line = b"flood_%06d:1|c" % i
            if size + len(line) + 1 > 1400:
                sock.sendto(b"\n".join(batch), ("127.0.0.1", port))
                batch, size = [], 0
            batch.append(line)
            size += len(line) + 1
            sent += 1
        if batch:
            sock.sendto(b"\n".join(batch), ("127.0.0.1", port))
    return sent


class DnsResponder:
    """A minimal DNS server (UDP) answering ``name`` with ``address`` once ``known``, NXDOMAIN before.

    It plays compose's embedded DNS: a service name does not resolve until its container exists.
    """

    def __init__(self, bind_ip: str, name: str, address: str) -> None:
        self.name, self.address = name.encode(), socket.inet_aton(address)
        self.known = threading.Event()
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind_ip, 53))
        self.sock.settimeout(0.2)
        self._closed = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                query, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            self.queries += 1
            self.sock.sendto(self.answer(query), peer)

    def answer(self, query: bytes) -> bytes:
        labels, pos = [], 12
        while query[pos]:
            labels.append(query[pos + 1 : pos + 1 + query[pos]])
            pos += 1 + query[pos]
        qtype = int.from_bytes(query[pos + 1 : pos + 3], "big")
        question = query[12 : pos + 5]
        ours = b".".join(labels).lower() == self.name and self.known.is_set()
        records = b""
        if ours and qtype == 1:  # A: one record, the name pointing back at the question (0xC00C)
            records = b"\xc0\x0c" + (1).to_bytes(2, "big") + (1).to_bytes(2, "big") + (5).to_bytes(4, "big")
            records += (4).to_bytes(2, "big") + self.address
        flags = 0x8400 | (query[2] & 0x01) << 8 | (0 if ours else 3)  # response, authoritative, RD, rcode
        header = query[:2] + flags.to_bytes(2, "big") + (1).to_bytes(2, "big")
        header += (1 if records else 0).to_bytes(2, "big") + bytes(4)
        return header + question + records

    def close(self) -> None:
        self._closed = True
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def namespace(tmp_path):
    """A network namespace joined to this one by a veth pair: (name, host-side ip, namespace-side ip)."""
    tag = os.getpid() % 250
    name, host_if, ns_if = f"faults-dns-{os.getpid()}", f"fdns{tag}h", f"fdns{tag}n"
    host_ip, ns_ip = f"10.213.{tag}.1", f"10.213.{tag}.2"
    commands = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if, "netns", name],
        ["ip", "addr", "add", f"{host_ip}/30", "dev", host_if],
        ["ip", "link", "set", host_if, "up"],
        ["ip", "netns", "exec", name, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if],
        ["ip", "netns", "exec", name, "ip", "link", "set", ns_if, "up"],
        ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
    ]
    try:
        for argv in commands:
            subprocess.run(argv, check=True, capture_output=True, timeout=10)
        yield name, host_ip, ns_ip
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


def test_exporter_name_unresolvable_at_start_is_resolved_later_without_a_worker_restart(
    namespace, exporters, tmp_path
):
    ns, host_ip, ns_ip = namespace
    dns = DnsResponder(host_ip, "statsd-exporter", host_ip)
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {host_ip}\noptions timeout:1 attempts:1\n")
    exporter = exporters(udp_host=host_ip)
    # the app in the namespace, its /etc/resolv.conf (a private bind mount) naming the responder
    in_namespace = ("ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private", "sh", "-c")
    in_namespace += (f'mount --bind "{resolv}" /etc/resolv.conf && exec "$0" "$@"',)
    env = {"STATSD_HOST": "statsd-exporter", "STATSD_PORT": str(exporter.udp_port)}
    try:
        app = App(tmp_path, env, host=ns_ip, prefix=in_namespace)
        try:
            workers = app.workers()
            traffic = Traffic(app.url, rate_per_s=40, mix=WORK, total=520, record=True).start()
            time.sleep(3)
            exporter.start()  # compose start order: the exporter's container, and its name, come later
            resolvable_at = time.monotonic()
            dns.known.set()
            workers_after = app.serve_out(traffic)
        finally:
            client = app.stop()
        total = settled(lambda: counted(exporter.metrics_url))
    finally:
        dns.close()
    assert_served_without_a_worker_restart(traffic, app, workers, workers_after)
    # the client looks the name up again at most RESOLVE_RETRY_S after a failure
    assert_counting_resumed(traffic, total, resolvable_at, counts_from=resolvable_at + RESOLVE_RETRY_S)
    warnings = app.proc.output().count("statsd_instrument: cannot send to udp://statsd-exporter:")
    assert 1 <= warnings <= len(workers)  # one line per worker process that had something to send
    assert client["dropped_lines"] > 0 and dns.queries > 0
    figure(
        f"exporter name unresolvable for {resolvable_at - traffic.answers[0][0]:.1f} s after the app "
        f"started sending: {len(traffic.answers)} requests, none failed, no worker restarted; "
        f"{total:.0f} counted (answered after the name resolved: "
        f"{answered_between(traffic, resolvable_at, float('inf'))}); {warnings} log lines "
        f"(one per worker); {dns.queries} DNS queries; client stats: {client}"
    )
