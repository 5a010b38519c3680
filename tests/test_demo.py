"""``statsd-instrument demo`` brings the stack up natively, reports live, and leaves nothing behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from statsd_instrument import demo
from statsd_instrument.stack.ports import port_is_free
from statsd_instrument.stack.prometheus import PrometheusAPI, PromQLError
from tests.helpers import ManagedProcess, free_port, python_bin, wait_until

pytestmark = pytest.mark.e2e


def demo_ports() -> dict[str, int]:
    return {
        "--app-port": free_port(),
        "--exporter-port": free_port(),
        "--statsd-port": free_port(socket.SOCK_DGRAM),
        "--prometheus-port": free_port(),
        "--alertmanager-port": free_port(),
    }


def as_flags(ports: dict[str, int]) -> list[str]:
    return [item for flag, port in ports.items() for item in (flag, str(port))]


def processes_mentioning(ports: dict[str, int]) -> list[str]:
    """Command lines of live processes that name one of ``ports`` (the demo's children all do)."""
    needles = [f"127.0.0.1:{port}" for port in ports.values()]
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(n in cmdline for n in needles):
            found.append(f"{entry.name}: {cmdline}")
    return found


def assert_nothing_left(ports: dict[str, int]) -> None:
    for flag, port in ports.items():
        protocol = "udp" if flag == "--statsd-port" else "tcp"
        assert port_is_free(port, protocol), f"{flag} {port}/{protocol} still in use"
    assert processes_mentioning(ports) == []


def wait_for_output(proc: ManagedProcess, text: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.proc.poll() is None:
        if text in proc.output():
            return True
        time.sleep(0.5)
    return text in proc.output()


def stored_request_total(data_dir: Path, tmp_path: Path) -> float:
    """``sum(http_requests_total)`` as the demo's Prometheus stored it, read by this test's own Prometheus."""
    config = tmp_path / "read-only.yml"
    config.write_text("global: {}\n")
    port = free_port()
    reader = ManagedProcess(
        [
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
        ],
        log=tmp_path / "reader.log",
    )  # fmt: skip
    try:
        api = PrometheusAPI(f"http://127.0.0.1:{port}", timeout_s=3)

        def total() -> float | None:
            try:
                return api.scalar("sum(last_over_time(http_requests_total[15m]))")
            except PromQLError:
                return None

        value = wait_until(total, timeout_s=60, interval_s=0.5)
        assert value is not None, reader.output()
        return value
    finally:
        reader.stop()


def test_demo_runs_the_whole_stack_for_its_duration_and_leaves_nothing_listening(tmp_path):
    ports = demo_ports()
    proc = ManagedProcess(
        [python_bin("statsd-instrument"), "demo", "--duration", "40", "--keep", *as_flags(ports)],
        log=tmp_path / "demo.log",
    )
    try:
        api = PrometheusAPI(f"http://127.0.0.1:{ports['--prometheus-port']}", timeout_s=3)

        def counted() -> float | None:
            try:
                return api.scalar("sum(http_requests_total)")
            except PromQLError:
                return None

        deadline = time.monotonic() + 35
        requests = None
        while not requests and time.monotonic() < deadline and proc.proc.poll() is None:
            time.sleep(1)
            requests = counted()
        assert requests and requests > 0, proc.output()  # Prometheus answers with the app's traffic
        assert proc.proc.wait(90) == 0, proc.output()
    finally:
        proc.stop()
    out = proc.output()
    assert "[Prometheus, last 1m] requests" in out
    # the demo's verdict, checked against the samples its Prometheus stored, read back by this test
    answered = int(re.search(r"final: (\d+) requests answered", out).group(1))
    workdir = Path(re.search(r"logs and configs kept in (\S+)", out).group(1))
    try:
        assert stored_request_total(workdir / "prometheus-data", tmp_path) == answered > 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    assert f"http://127.0.0.1:{ports['--prometheus-port']}/graph" in out
    assert "nothing left listening" in out
    # the demo's 8% of 500s trips the slow-burn ticket: Alertmanager delivered it to the webhook receiver
    assert "| delivered: HTTPErrorBudgetSlowBurn firing -> ticket |" in out
    assert "delivered to the webhook receiver: HTTPErrorBudgetSlowBurn firing -> ticket at" in out
    assert_nothing_left(ports)


def test_demo_without_prometheus_says_so_and_ctrl_c_stops_everything(tmp_path):
    ports = demo_ports()
    # PATH without the Debian prometheus: uwsgi is found next to the interpreter
    proc = ManagedProcess(
        [python_bin("statsd-instrument"), "demo", "--interval", "1", *as_flags(ports)],
        env={"PATH": str(Path(sys.executable).parent)},
        log=tmp_path / "demo.log",
    )
    try:
        assert wait_for_output(proc, "[exporter, since start] requests", 60), proc.output()
        assert proc.stop(signal.SIGINT) == 0, proc.output()
    finally:
        proc.stop()
    out = proc.output()
    assert "Prometheus  not installed" in out
    assert "nothing left listening" in out
    assert_nothing_left(ports)


@pytest.mark.parametrize("flag", ["--prometheus-port", "--statsd-port", "--app-port", "--alertmanager-port"])
def test_demo_refuses_a_taken_port_naming_it_and_its_flag_before_starting_anything(flag, capsys):
    ports = demo_ports()
    kind = socket.SOCK_DGRAM if flag == "--statsd-port" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as taken:
        taken.bind(("127.0.0.1", ports[flag]))
        if kind == socket.SOCK_STREAM:
            taken.listen()
        assert demo.main(["--duration", "5", *as_flags(ports)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(ports[flag]) in err and flag in err and "already in use" in err
    assert_nothing_left(ports)
