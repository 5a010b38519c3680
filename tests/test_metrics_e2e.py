"""End to end: declared metrics under uwsgi (5 workers) and the zero start as real Prometheus sees it.

* tests/apps/declared_app.py under uwsgi with 5 recycled workers, its mapping written by ``gen-mapping``:
  the exporter's counters and histogram buckets equal what was requested, the never-requested status is at
  0 (zero start from the workers), and the uwsgi master sent nothing when it imported the app.
* A client sending over unixgram to the embedded exporter, scraped by Prometheus every second: the declared
  counter is 0 in Prometheus before its first increment; the exporter is restarted mid-traffic; the
  client notices (its sends fail, then succeed) and zero-starts again; ``increase()`` over the run misses
  only increments of the outage window, and a series first incremented after the restart is counted.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import pytest

from statsd_instrument import Client, Counter
from statsd_instrument.mapping.declared import mapping_text
from tests.helpers import (
    REPO,
    ManagedProcess,
    exporter_process,
    free_port,
    http_get,
    python_bin,
    scrape,
    wait_for_port,
    wait_until,
)

APP = "tests.apps.declared_app"
pytestmark = pytest.mark.e2e


def values_of(samples: dict, name: str, label: str) -> dict:
    return {dict(labels)[label]: v for (sample, labels), v in samples.items() if sample == name}


# -- uwsgi -------------------------------------------------------------------------------------------------


def plan() -> list[tuple[str, str, int]]:
    """(status, step, milliseconds) of every request: 400 paid, 200 failed, over 2 steps and 4 durations."""
    durations = (1, 10, 100, 1000)  # one below each declared bucket bound (5, 50, 500 ms) and one above all
    out = [("paid", ("pay", "ship")[i % 2], durations[i % 4]) for i in range(400)]
    out += [("failed", "pay", durations[i % 4]) for i in range(200)]
    return out


def drive(port: int, requests: list[tuple[str, str, int]], threads: int = 3) -> None:
    errors: list = []

    def run(chunk):
        for status, step, ms in chunk:
            code, body = http_get(f"http://127.0.0.1:{port}/{status}?step={step}&ms={ms}")
            if code != 200:
                errors.append((code, body))

    pool = [threading.Thread(target=run, args=(requests[i::threads],)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors[:3]


def test_uwsgi_five_workers_export_declared_metrics_exactly(tmp_path):
    mapping = tmp_path / "mapping.yml"
    generated = subprocess.run(
        [sys.executable, "-m", "statsd_instrument.cli", "gen-mapping", APP, "-o", str(mapping)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert generated.returncode == 0, generated.stderr
    udp, web, port = free_port(socket.SOCK_DGRAM), free_port(), free_port()
    exporter = exporter_process(mapping, web, tmp_path / "exporter.log", udp_port=udp)
    metrics_url = f"http://127.0.0.1:{web}/metrics"
    app = None
    try:
        app = ManagedProcess(
            [
                python_bin("uwsgi"),
                "--http-socket",
                f"127.0.0.1:{port}",
                "--module",
                f"{APP}:application",
                "--home",
                sys.prefix,
                "--master",
                "--processes",
                "5",
                "--max-requests",
                "60",  # every worker is recycled: each incarnation zero-starts
                "--min-worker-lifetime",
                "0",
                "--disable-logging",
            ],
            env={"PYTHONPATH": str(REPO), "STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(udp)},
            cwd=REPO,
            log=tmp_path / "uwsgi.log",
        )
        wait_for_port(port, proc=app.proc)
        # The master imported the app (and declared the metrics) before it forked: anything it sent then is
        # queued before this marker, so once the marker shows, the master's lines would show too.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"e2e_marker:1|c", ("127.0.0.1", udp))
        before = wait_until(
            lambda: (lambda m: m if ("e2e_marker_total", ()) in m else None)(scrape(metrics_url)), 10
        )
        assert before and not [key for key in before if key[0].startswith("e2e_orders")], before

        requests = plan()
        drive(port, requests)

        def settled():
            samples = scrape(metrics_url)
            total = sum(values_of(samples, "e2e_orders_total", "status").values())
            return samples if total >= len(requests) else None

        samples = wait_until(settled, 15)
        assert samples, scrape(metrics_url)
    finally:
        if app is not None:
            app.stop()
        exporter.stop()
    assert app.output().count("Respawned uWSGI worker") >= 5  # recycling really happened

    assert values_of(samples, "e2e_orders_total", "status") == {"paid": 400, "failed": 200, "refunded": 0}
    expected = {(step, le): 0 for step in ("pay", "ship") for le in ("0.005", "0.05", "0.5", "+Inf")}
    for _, step, ms in requests:
        for le in ("0.005", "0.05", "0.5", "+Inf"):
            if ms / 1000 <= float(le):
                expected[(step, le)] += 1
    buckets = {
        (dict(labels)["step"], dict(labels)["le"]): v
        for (name, labels), v in samples.items()
        if name == "e2e_checkout_seconds_bucket"
    }
    assert {(step, str(float(le))): v for (step, le), v in buckets.items()} == {
        (step, str(float(le))): v for (step, le), v in expected.items()
    }
    assert values_of(samples, "e2e_checkout_seconds_count", "step") == {"pay": 400, "ship": 200}


# -- Prometheus: zero start before the first increment, and after an exporter restart -----------------------


def prometheus_query(base: str, expr: str, at: float | None = None) -> dict:
    params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
    with urllib.request.urlopen(f"{base}/api/v1/query?{urllib.parse.urlencode(params)}", timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return body["data"]


def raw_samples(base: str, selector: str, seconds: int) -> list[tuple[float, float]]:
    """Every (timestamp, value) Prometheus stored for the one series of ``selector`` in the last seconds."""
    result = prometheus_query(base, f"{selector}[{seconds}s]")["result"]
    return [(float(t), float(v)) for t, v in result[0]["values"]] if result else []


def instant(base: str, expr: str, at: float | None = None) -> float | None:
    result = prometheus_query(base, expr, at)["result"]
    return float(result[0]["value"][1]) if result else None


class Traffic:
    """Increments a declared counter about 40 times a second in a thread, flushing each (like requests)."""

    def __init__(self, counter: Counter, client: Client, **tags: str) -> None:
        self.stamps: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(counter, client, tags), daemon=True)
        self._thread.start()

    def _run(self, counter: Counter, client: Client, tags: dict) -> None:
        while not self._stop.is_set() and len(self.stamps) < 5000:  # bounded in count and time
            self.stamps.append(time.time())
            counter.increment(**tags)
            client.flush()
            self._stop.wait(0.025)

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join(10)
        return self.stamps


@pytest.fixture
def prometheus(tmp_path):
    """(start a Prometheus scraping 127.0.0.1:port every second -> its base URL); stopped at the end."""
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus package is required (scripts/system-deps.sh installs it)"
    started: list[ManagedProcess] = []

    def start(target_port: int) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - {{job_name: declared, static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]}}\n"
        )
        port = free_port()
        proc = ManagedProcess(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            log=tmp_path / "prometheus.log",
        )
        started.append(proc)
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: http_get(f"{base}/-/ready", 2)[0] == 200 if _listening(port) else False, 60)
        return base

    yield start
    for proc in started:
        proc.stop()


@pytest.mark.parametrize("transport", ["unixgram", "udp"])
def test_zero_start_reaches_prometheus_first_and_after_an_exporter_restart(transport, tmp_path, prometheus):
    short_dir = tempfile.mkdtemp(prefix="declared-")  # a unix socket path must be short
    path = os.path.join(short_dir, "statsd.sock")
    udp = free_port(socket.SOCK_DGRAM)
    # over UDP the client notices the restart by the refusals (ICMP port unreachable) its sends report
    sends_to = {"socket_path": path} if transport == "unixgram" else {"port": udp}
    client = Client(strict=True, **sends_to)
    jobs = Counter("zs_jobs_total", "Jobs by outcome.", tags={"outcome": ("ok", "failed")}, client=client)
    mapping = tmp_path / "mapping.yml"
    mapping.write_text(mapping_text([jobs]))
    web = free_port()
    where = {"unixgram": path} if transport == "unixgram" else {"udp_port": udp}

    def exporter() -> ManagedProcess:  # a process: a restart closes every connection, as a real one does
        return exporter_process(mapping, web, tmp_path / "exporter.log", **where)

    current = exporter()
    traffic = None
    try:
        prom = prometheus(web)
        ok, failed = 'zs_jobs_total{outcome="ok"}', 'zs_jobs_total{outcome="failed"}'
        client.gauge("zs_worker_up", 1)  # the process's first line: its zero start goes with it
        client.flush()
        # 1. Prometheus has both series at 0 before anything was incremented
        assert wait_until(lambda: instant(prom, ok) == 0 and instant(prom, failed) == 0, 30)
        started = time.time()

        # 2. traffic; the exporter stops mid-traffic and comes back
        traffic = Traffic(jobs, client, outcome="ok")
        # Prometheus tells a restarted counter from a slower one only if it comes back lower than it was:
        # run long enough before the stop (as a long-running service has) for the first scrape after the
        # restart to find a lower value (docs/metrics.md)
        assert wait_until(lambda: (instant(prom, ok) or 0) >= 200, 60)
        stopped = time.time()
        current.stop()
        assert wait_until(lambda: instant(prom, "up") == 0, 30)  # Prometheus saw the outage
        assert wait_until(lambda: client.stats["send_errors"] > 0, 10)  # and so did the client
        current = exporter()
        restarted = time.time()  # the outage ends when the new exporter listens
        # the client zero-starts the restarted exporter: the never-incremented series comes back at 0
        assert wait_until(lambda: instant(prom, failed) == 0 and instant(prom, "up") == 1, 30)
        assert wait_until(lambda: len([t for t, _ in raw_samples(prom, ok, 60) if t > restarted]) >= 3, 30)
        stamps = traffic.stop()
        traffic = None
        dropped = client.stats["dropped_lines"]

        # 3. a series first incremented after the restart
        jobs.increment(outcome="failed")
        client.flush()
        assert wait_until(lambda: instant(prom, failed) == 1, 30)
        assert wait_until(lambda: raw_samples(prom, ok, 120)[-1][1] == current_value(web, "ok"), 30)
    finally:
        if traffic is not None:
            traffic.stop()
        current.stop()
        client.close()
        shutil.rmtree(short_dir, ignore_errors=True)

    samples = raw_samples(prom, ok, int(time.time() - started) + 30)
    last_before = max(t for t, _ in samples if t < stopped)
    end = samples[-1][0]
    run = int(end - started) + 5
    # evaluated at the last sample's own time from before the zero: no extrapolation at either end
    counted = instant(prom, f"increase({ok}[{run}s])", at=end)
    in_window = sum(1 for t in stamps if last_before < t <= restarted)
    missed = len(stamps) - counted
    print(  # the figures docs/metrics.md quotes (pytest -s)
        f"{transport}: sent {len(stamps)}, increase() {counted:.0f}, missed {missed:.0f}; in the outage"
        f" window {in_window}, dropped by the client {dropped}; outage {restarted - stopped:.1f} s"
    )
    assert counted == round(counted)
    assert 0 <= missed <= in_window, (len(stamps), counted, in_window, dropped, samples)
    # the failed series: 0 after the restart (zero start again), then 1: a window that starts after the
    # restart sees the increment (without the second zero start it would hold one sample: no increase)
    failed_samples = raw_samples(prom, failed, int(time.time() - started) + 30)
    after = [(t, v) for t, v in failed_samples if t > restarted]
    assert after[0][1] == 0 and after[-1][1] == 1, failed_samples
    failed_end = after[-1][0]
    window_ms = int((failed_end - restarted) * 1000)
    assert instant(prom, f"increase({failed}[{window_ms}ms])", at=failed_end) == 1


def _listening(port: int) -> bool:
    try:
        wait_for_port(port, 0.2)
        return True
    except TimeoutError:
        return False


def current_value(web: int, outcome: str) -> float:
    return scrape(f"http://127.0.0.1:{web}/metrics").get(("zs_jobs_total", (("outcome", outcome),)), -1)
