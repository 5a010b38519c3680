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
from tests.helpers import ManagedProcess, free_port, process_tree, python_bin, wait_until

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


def listening_sockets(pids: set[int]) -> set[tuple[str, str, int]]:
    """(protocol, local ip, port) of the listening TCP and unconnected UDP sockets of ``pids`` (/proc/net)."""
    inodes = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table, listening in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if inode in inodes and state == listening and set(remote.split(":")[0]) == {"0"}:
                hex_ip, hex_port = local.split(":")
                ip = (
                    socket.inet_ntop(socket.AF_INET, bytes.fromhex(hex_ip)[::-1])
                    if len(hex_ip) == 8
                    else "ipv6"
                )
                found.add((table.rstrip("6"), ip, int(hex_port, 16)))
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
        # every listener of every process the demo started is on loopback, none on 0.0.0.0 or IPv6: each
        # listening TCP socket, and the UDP sockets on the ports the demo was given. (A worker's client
        # socket only sends: it is no listener. Unconnected, the kernel binds it to 0.0.0.0:<ephemeral> at
        # its first send; connected to the exporter, to 127.0.0.1.)
        sockets = listening_sockets(process_tree(proc.proc.pid))
        listeners = {s for s in sockets if s[0] == "tcp" or s[2] == ports["--statsd-port"]}
        given = {ports[f] for f in ("--app-port", "--exporter-port", "--prometheus-port", "--statsd-port")}
        assert given <= {port for _, _, port in listeners}, (given, listeners)
        assert {ip for _, ip, _ in listeners} == {"127.0.0.1"}, listeners
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
