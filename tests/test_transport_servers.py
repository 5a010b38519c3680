"""End to end: real uwsgi and gunicorn workers, recycled every 50 requests, lose and duplicate nothing.

The app (tests/apps/counter_app.py) emits a counter and a timer per request and never flushes; after exactly
3,000 requests and 2 s idle the listener must hold exactly 3,000 of each, and a graceful stop adds nothing.
"""

from __future__ import annotations

import http.client
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import REPO, ManagedProcess, UdpCollector, free_port, python_bin, wait_for_port

pytestmark = pytest.mark.e2e

REQUESTS = 3000
CLIENT_THREADS = 3


def _hammer(port: int, total: int, path: str = "/work", body: bytes = b"ok") -> None:
    """Exactly ``total`` GET ``path`` requests from a few threads, a new connection each (no keep-alive)."""
    errors: list = []
    lock = threading.Lock()
    remaining = [total]

    def run() -> None:
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            for attempt in range(5):  # a worker being recycled may reset a connection: retry that one
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    conn.request("GET", path, headers={"Connection": "close"})
                    resp = conn.getresponse()
                    answer = resp.read()
                    assert resp.status == 200 and answer == body, (resp.status, answer)
                    break
                except (ConnectionError, http.client.RemoteDisconnected) as err:
                    if attempt == 4:
                        errors.append(err)
                finally:
                    conn.close()

    threads = [threading.Thread(target=run) for _ in range(CLIENT_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def _counts(collector: UdpCollector) -> Counter:
    return collector.calls()


def _pids(collector: UdpCollector) -> set:
    return {line.rsplit("pid:", 1)[1].split(",")[0] for line in collector.lines() if "pid:" in line}


def _stop_via_master(server: ManagedProcess, stop_signal: int) -> None:
    """Signal the master only (as systemd KillMode=mixed and container runtimes do), wait, then clean up.

    uwsgi workers flush at exit when their master stops them; a stop signal sent to every worker at once
    as well (kill of the process group) can interrupt uwsgi's own exit path, see docs/client.md.
    """
    try:
        os.kill(server.pid, stop_signal)
        server.proc.wait(30)
    finally:
        server.stop()


def _run_scenario(
    argv: list, port: int, collector: UdpCollector, env: dict, log: Path, stop_signal: int
) -> Counter:
    server = ManagedProcess(argv, env=env, cwd=REPO, log=log)
    try:
        wait_for_port(port, proc=server.proc)
        _hammer(port, REQUESTS)
        time.sleep(2.0)  # idle: nothing flushes explicitly; the client's idle flush must deliver
        lines = collector.lines()
        counts = _counts(collector)
        assert counts["e2e_requests"] == REQUESTS, (counts, server.output()[-2000:])
        assert counts["e2e_latency"] == REQUESTS, counts
        # 50 requests per worker life: far more worker processes than the 5 slots sent metrics
        assert len(_pids(collector)) >= REQUESTS // 50 // 2, len(_pids(collector))
        assert all(not ln.startswith("e2e_latency:") or "|ms|#pid:" in ln for ln in lines)
    finally:
        _stop_via_master(server, stop_signal)
    time.sleep(0.5)  # anything a stopping worker would (wrongly) send again arrives by now
    after = _counts(collector)
    assert after["e2e_requests"] == REQUESTS and after["e2e_latency"] == REQUESTS, after
    return after


def _env(collector: UdpCollector, socket_path: str | None = None) -> dict:
    env = {"PYTHONPATH": str(REPO), "STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(collector.port)}
    if socket_path:
        env = {"PYTHONPATH": str(REPO), "STATSD_SOCKET": socket_path}
    return env


def _uwsgi_argv(port: int, app: str = "counter_app", processes: int = 5, *flags: str) -> list:
    # default threading flags: no --enable-threads, no --lazy-apps, no fork hooks
    return [
        python_bin("uwsgi"),
        "--http-socket", f"127.0.0.1:{port}",
        "--module", f"tests.apps.{app}:application",
        "--home", sys.prefix,
        "--master",
        "--processes", str(processes),
        *flags,
        "--disable-logging",
    ]  # fmt: skip


#: recycle every worker after 50 requests, however young it is
RECYCLE_50 = ("--max-requests", "50", "--min-worker-lifetime", "0")


@pytest.mark.parametrize("transport", ["udp", "unixgram"])
def test_uwsgi_recycled_workers_lose_and_duplicate_nothing(transport, tmp_path):
    port = free_port()
    with tempfile.TemporaryDirectory() as short_dir:  # unix socket paths must be short
        socket_path = os.path.join(short_dir, "statsd.sock") if transport == "unixgram" else None
        collector = UdpCollector(unix_path=socket_path)
        try:
            after = _run_scenario(
                _uwsgi_argv(port, "counter_app", 5, *RECYCLE_50),
                port,
                collector,
                _env(collector, socket_path),
                tmp_path / "uwsgi.log",
                signal.SIGINT,  # uwsgi 2.0's shutdown signal (SIGTERM reloads without --die-on-term)
            )
            # emitted once in the master at import; no worker re-sent the master's buffer
            assert after["e2e_app_loaded"] == 1, after
        finally:
            collector.close()


@pytest.mark.parametrize("preload", [False, True], ids=["plain", "preload"])
def test_gunicorn_recycled_workers_lose_and_duplicate_nothing(preload, tmp_path):
    port = free_port()
    collector = UdpCollector()
    argv = [
        python_bin("gunicorn"),
        "--bind", f"127.0.0.1:{port}",
        "--workers", "5",
        "--worker-class", "sync",
        "--max-requests", "50",
        "--log-level", "warning",
        *(["--preload"] if preload else []),
        "tests.apps.counter_app:application",
    ]  # fmt: skip
    try:
        after = _run_scenario(
            argv,
            port,
            collector,
            _env(collector),
            tmp_path / "gunicorn.log",
            signal.SIGTERM,  # graceful
        )
        if preload:  # imported once, in the master, which had a flusher thread that it stopped before forking
            assert after["e2e_app_loaded"] == 1, after
        else:  # imported by every worker ever started (some may have served nothing before the stop)
            assert after["e2e_app_loaded"] >= len(_pids(collector)), after
    finally:
        collector.close()


def test_uwsgi_workers_flush_at_exit_when_recycled_and_when_stopped(udp_collector, tmp_path):
    port = free_port()
    argv = _uwsgi_argv(port, "exit_app", 2, "--max-requests", "5", "--min-worker-lifetime", "0")
    server = ManagedProcess(argv, env=_env(udp_collector), cwd=REPO, log=tmp_path / "uwsgi.log")
    try:
        wait_for_port(port, proc=server.proc)
        _hammer(port, 23)
        time.sleep(1.0)  # recycled workers have exited by now; live ones hold their lines (60 s interval)
        before_stop = sum(udp_collector.calls().values())
    finally:
        _stop_via_master(server, signal.SIGINT)
    after_stop = sum(udp_collector.wait_for_calls(23, timeout_s=5).values())
    # each recycled worker sent its 5 lines as it exited; the live ones sent the rest when stopped
    assert before_stop % 5 == 0 and 15 <= before_stop < 23, before_stop
    assert after_stop == 23, (after_stop, server.output()[-2000:])


def _children(pid: int, count: int, timeout_s: float = 30.0) -> list:
    """The pids of ``pid``'s children once there are ``count`` of them (uwsgi forks after loading the app)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(child) for child in f.read().split()]
        if len(children) >= count or time.monotonic() > deadline:
            return children
        time.sleep(0.05)


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_uwsgi_stop_signal_to_every_process_ends_workers_with_idle_flushers_and_loses_nothing(
    stop_signal, udp_collector, tmp_path
):
    """The example app, 5 workers, each with its idle flusher thread; the stop signal goes to the master and
    every worker at once (systemd's default KillMode=control-group, a terminal's Ctrl-C). uwsgi's C stop
    handlers call exit() in whichever thread the kernel picks: in the flusher thread, Python's finalization
    waited for the main thread forever and the master killed the worker after its reload mercy."""
    port = free_port()
    argv = [
        python_bin("uwsgi"),
        "--ini", str(REPO / "examples" / "flask_app" / "uwsgi.ini"),  # master, 5 workers, die-on-term
        "--http-socket", f"127.0.0.1:{port}",
        "--disable-logging",
        "--worker-reload-mercy", "30",  # a worker that does not exit is killed after 30 s, and logged
    ]  # fmt: skip
    env = {"STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(udp_collector.port), "STATSD_SERVICE": "stop"}
    server = ManagedProcess(argv, env=env, log=tmp_path / "uwsgi.log")
    try:
        wait_for_port(port, proc=server.proc)
        workers = _children(server.pid, 5)
        assert len(workers) == 5, workers
        sent = 0
        while not all(_threads(w) == 2 for w in workers) and sent < 3000:  # every worker has served
            _hammer(port, 30, path="/test/", body=b"rest")
            sent += 30
        time.sleep(1.0)  # idle: every worker's flusher thread waits for its next tick
        assert [_threads(w) for w in workers] == [2] * 5, server.output()[-2000:]

        os.killpg(server.pid, stop_signal)
        server.proc.wait(60)  # a generous test timeout only (mercy 30 s): the outcome is checked below
    finally:
        server.stop()
    log = server.output()
    assert "NO MERCY" not in log and "goodbye to uWSGI" in log, log[-3000:]
    for worker in workers:
        with pytest.raises(ProcessLookupError):  # exited and reaped by the master, none left behind
            os.kill(worker, 0)
    time.sleep(0.5)  # anything sent twice has arrived by now
    names = udp_collector.calls()
    assert names["request_count"] == names["request_latency_seconds"] == sent, (names, sent)


def test_sigkilled_uwsgi_workers_lose_at_most_one_flush_window_of_their_requests(udp_collector, tmp_path):
    """A worker killed outright (SIGKILL: the OOM killer, a crash) loses what waits in its buffer, and only
    that: the requests it answered within its last flush window. Every other request is counted once."""
    window_s, slack_s = 0.2, 0.1  # slack: the flusher thread's tick may wait for the GIL and the CPU
    port = free_port()
    argv = _uwsgi_argv(port, "counter_app", 3)
    env = {**_env(udp_collector), "STATSD_FLUSH_INTERVAL_MS": str(int(window_s * 1000))}
    server = ManagedProcess(argv, env=env, cwd=REPO, log=tmp_path / "uwsgi.log")
    answered: list[tuple[float, str]] = []  # (when the response arrived, the worker that answered)
    kills: list[tuple[float, str]] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set() and len(answered) < 20_000:  # bounded in time and count
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", "/work", headers={"Connection": "close"})
                resp = conn.getresponse()
                if resp.read() == b"ok" and resp.status == 200:
                    answered.append((time.monotonic(), resp.getheader("X-Worker-Pid")))
            except (OSError, http.client.HTTPException):  # the killed worker's open connection
                pass
            finally:
                conn.close()

    try:
        wait_for_port(port, proc=server.proc)
        threads = [threading.Thread(target=load) for _ in range(CLIENT_THREADS)]
        for t in threads:
            t.start()
        for _ in range(2):  # kill the busiest worker twice, a second apart, while the load runs
            time.sleep(1.0)
            busiest = Counter(pid for _, pid in answered).most_common(1)[0][0]
            os.kill(int(busiest), signal.SIGKILL)
            kills.append((time.monotonic(), busiest))
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(30)
    finally:
        _stop_via_master(server, signal.SIGINT)  # the live workers flush at exit
    counted = udp_collector.wait_for_calls(len(answered) * 2, timeout_s=3)["e2e_requests"]
    lost = len(answered) - counted
    bound = sum(
        1 for when, pid in answered for killed_at, killed in kills
        if pid == killed and killed_at - window_s - slack_s <= when <= killed_at + slack_s
    )  # fmt: skip
    last_window = sum(
        1 for when, pid in answered for killed_at, killed in kills
        if pid == killed and killed_at - window_s <= when <= killed_at
    )  # fmt: skip
    print(
        f"answered {len(answered)}, counted {counted}, lost {lost}; the killed workers answered {last_window}"
    )
    print(f"in their last window ({window_s * 1000:.0f} ms), {bound} with {slack_s * 1000:.0f} ms of slack")
    assert len(answered) > 100 and len({pid for _, pid in answered}) >= 4  # killed workers were replaced
    assert 0 <= lost <= bound, (lost, bound, len(answered))
