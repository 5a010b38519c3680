"""Throughput of the example Flask app, 2 workers under uwsgi and under gunicorn: bare, StatsdInstrument, and
prometheus_flask_exporter.

wrk (2 threads, 16 connections) against ``GET /test/``; rounds interleave the variants (order rotated each
round) so that machine noise hits all of them alike; medians and ratios to bare are reported. StatsdInstrument
pushes to the embedded exporter (``statsd-instrument exporter``, shipped mapping) on the same machine, twice:
once as shipped (it pauses 4 ms after a wake-up, so datagrams are read in batches), once with that pause off
(``STATSD_INSTRUMENT_EXPORTER_COALESCE_MS=0``): it then wakes for every datagram and reads it at once, as the
Go statsd_exporter does, so that variant carries a production-like receiver's cost. A last variant sends
nothing (null protocol): the Python cost alone.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TITLE = "Flask under uwsgi and gunicorn: request throughput with and without metrics"
ROUNDS = 7
SECONDS = 3
WRK = ["wrk", "-t2", "-c16"]
# receives and discards, reading like the embedded exporter does: drain, pause 4 ms, wait again
SINK = (
    "import select,socket,sys,time\n"
    "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('127.0.0.1',int(sys.argv[1])))\n"
    "s.setblocking(False)\n"
    "while True:\n"
    "    select.select([s],[],[])\n"
    "    try:\n"
    "        while True: s.recv(65536)\n"
    "    except BlockingIOError: pass\n"
    "    time.sleep(0.004)\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


def start(argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(5)


#: the /metrics URL of each exporter started by ``start_receiver`` (by its process id)
EXPORTER_URLS: dict[int, str] = {}


def start_receiver(port: int, per_datagram: bool = False) -> tuple[subprocess.Popen, str]:
    """The embedded exporter if it exists, else a UDP sink; returns (process, description). ``per_datagram``
    turns the exporter's read-coalescing pause off (it then wakes for every datagram, like the Go one)."""
    exporter = shutil.which("statsd-instrument", path=str(BIN))
    probe = subprocess.run(
        [sys.executable, "-c", "import statsd_instrument.exporter.cli"], capture_output=True, cwd=ROOT
    )
    if exporter and probe.returncode == 0:
        web = free_port()
        argv = [
            exporter,
            "exporter",
            f"--statsd.listen-udp=127.0.0.1:{port}",
            "--statsd.listen-tcp=",
            f"--web.listen-address=127.0.0.1:{web}",
            f"--statsd.mapping-config={ROOT / 'exporter-mapping.yml'}",
        ]
        proc = start(argv, {"STATSD_INSTRUMENT_EXPORTER_COALESCE_MS": "0" if per_datagram else "4"})
        wait_for_port(web, proc)
        EXPORTER_URLS[proc.pid] = f"http://127.0.0.1:{web}/metrics"
        return proc, "the embedded exporter (`statsd-instrument exporter`, shipped mapping)"
    proc = start([sys.executable, "-c", SINK, str(port)], {})
    time.sleep(0.5)
    return proc, "a UDP sink process (the embedded exporter was not available in this checkout)"


def uwsgi(port: int, chdir: Path, module: str, env: dict[str, str]) -> subprocess.Popen:
    # the example's uwsgi.ini flags (master, default fork/thread flags) with 2 workers, request log off
    argv = [str(BIN / "uwsgi"), "--master", "--processes", "2", "--die-on-term", "--need-app"]
    argv += ["--disable-logging", "--chdir", str(chdir), "--module", module]
    argv += ["--http-socket", f"127.0.0.1:{port}"]
    proc = start(argv, env)
    wait_for_port(port, proc)
    return proc


def gunicorn(port: int, chdir: Path, module: str, env: dict[str, str]) -> subprocess.Popen:
    # sync workers (gunicorn's default), 2 of them, access log off
    argv = [str(BIN / "gunicorn"), "--workers", "2", "--chdir", str(chdir), "--bind", f"127.0.0.1:{port}"]
    argv += ["--log-level", "warning", module]
    proc = start(argv, env)
    wait_for_port(port, proc)
    return proc


def wrk(port: int, seconds: int) -> tuple[float, int]:
    """(requests per second, requests completed) of one wrk run."""
    out = subprocess.run(
        [*WRK, f"-d{seconds}s", f"http://127.0.0.1:{port}/test/"], capture_output=True, text=True, check=True
    ).stdout
    # uwsgi's --http-socket closes every connection after its response: wrk counts those as "read" errors
    errors = re.search(r"Non-2xx or 3xx|Socket errors: connect [1-9]|write [1-9]|timeout [1-9]", out)
    if errors:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return rate, int(re.search(r"(\d+) requests in", out).group(1))


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(groups: list[int]) -> float:
    """CPU time (user + system) used so far by every live process of the process ``groups``."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(fields[2]) in groups:  # fields after the command: state, ppid, pgrp, ..., utime, stime
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


Rounds = Dict[str, List[Tuple[float, float]]]
#: requests each variant served in the last ``interleaved`` run, warm-up included
SERVED: dict[str, int] = {}


def interleaved(ports: dict[str, int], rounds: int, seconds: int, groups: dict[str, list[int]]) -> Rounds:
    """(req/s, CPU µs per request of the variant's processes ``groups``: server and receiver) of each variant
    (in ``ports`` order) per round, after a warm-up; each round starts elsewhere. CPU per request hardly
    depends on what else the machine runs, so it is the steadier figure on a shared machine."""
    names = list(ports)
    for name in names:  # warm up: imports, first requests, caches
        SERVED[name] = wrk(ports[name], 1)[1]
    results: Rounds = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            before = cpu_seconds(groups[name])
            rate, requests = wrk(ports[name], seconds)
            SERVED[name] += requests
            cpu_us = (cpu_seconds(groups[name]) - before) / max(requests, 1) * 1e6
            results[name].append((rate, cpu_us))
            print(f"  round {r + 1} {name}: {rate:.0f} req/s, {cpu_us:.0f} us CPU/request", file=sys.stderr)
    return results


def ratio_table(results: Rounds) -> str:
    """Markdown rows: per variant the median req/s and its ratio to ``bare``, the median CPU per request
    (server processes + receiver) and bare's CPU per request divided by it (the throughput ratio a machine
    whose cores only this server used would see), and every round's req/s."""
    bare = statistics.median(rate for rate, _ in results["bare"])
    bare_cpu = statistics.median(cpu for _, cpu in results["bare"])
    rows = [
        "| variant | median req/s | vs bare | median CPU µs/request | vs bare (CPU) | rounds (req/s) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, values in results.items():
        median = statistics.median(rate for rate, _ in values)
        cpu = statistics.median(c for _, c in values)
        rounds = ", ".join(f"{rate:.0f}" for rate, _ in values)
        rows.append(
            f"| {name} | {median:.0f} | {median / bare:.3f}x | {cpu:.0f} | {bare_cpu / cpu:.3f}x | {rounds} |"
        )
    return "\n".join(rows)


#: the variants every web benchmark measures against ``bare`` (prometheus_flask_exporter: Flask only)
RECEIVING = ("statsd_instrument", "statsd_instrument_per_datagram")
VARIANT_TEXT = (
    "`statsd_instrument` pushes to {receiver} on the same machine as shipped (it pauses 4 ms after a "
    "wake-up, reading datagrams in batches); `statsd_instrument_per_datagram` pushes to the same exporter "
    "with that pause off (`STATSD_INSTRUMENT_EXPORTER_COALESCE_MS=0`: it wakes for every datagram and reads "
    "it at once, as the Go statsd_exporter does); `statsd_instrument_null` sends nothing "
    "(`STATSD_PROTOCOL=null`: the Python cost alone, no socket)."
)


def receiver_traffic(groups: dict[str, list[int]]) -> str:
    """What each receiving variant's exporter took in per request served (datagrams, lines, samples), from
    its own ``statsd_exporter_*_total`` counters: the cost a receiver pays per request."""
    from prometheus_client.parser import text_string_to_metric_families

    parts = []
    for name, pids in groups.items():
        url = next((EXPORTER_URLS[pid] for pid in pids if pid in EXPORTER_URLS), None)
        if url is None or not SERVED.get(name):
            continue
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        totals = {
            s.name: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name in ("statsd_exporter_udp_packets_total", "statsd_exporter_lines_total")
            or (s.name == "statsd_exporter_samples_total" and not s.labels)
        }
        served = SERVED[name]
        parts.append(
            f"`{name}`: {totals.get('statsd_exporter_udp_packets_total', 0) / served:.3f} datagrams, "
            f"{totals.get('statsd_exporter_lines_total', 0) / served:.3f} lines, "
            f"{totals.get('statsd_exporter_samples_total', 0) / served:.2f} samples"
        )
    return "Per request served, the exporter received " + "; ".join(parts) + "." if parts else ""


def receivers(procs: list, groups: dict[str, list[int]]) -> tuple[dict[str, dict[str, str]], str]:
    """Start one exporter per receiving variant (appended to ``procs``, its process group to ``groups``);
    the client environment of each variant (ours: both receivers and null)."""
    envs: dict[str, dict[str, str]] = {}
    text = ""
    for name in RECEIVING:
        port = free_port()
        receiver, text = start_receiver(port, per_datagram=name.endswith("per_datagram"))
        procs.append(receiver)
        groups[name] = [receiver.pid]
        envs[name] = {"STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(port)}
    envs["statsd_instrument_null"] = {"STATSD_PROTOCOL": "null"}
    return envs, text


def launch_all(launch, ports: dict[str, int], procs: list, groups: dict[str, list[int]], apps: dict) -> None:
    """Start each variant's server (``apps``: name -> (chdir, module, env)); its process group joins
    ``groups`` (servers run in their own session: the group is the server's pid)."""
    for name, (chdir, module, env) in apps.items():
        proc = launch(ports[name], chdir, module, env)
        procs.append(proc)
        groups.setdefault(name, []).append(proc.pid)


def flask_section(server: str, launch) -> str:
    """Bare, ours (two receivers), null and prometheus_flask_exporter under ``launch`` (uwsgi or gunicorn)."""
    multiproc_dir = tempfile.mkdtemp(prefix="bench-pfe-")
    example = ROOT / "examples" / "flask_app"
    procs: list[subprocess.Popen] = []
    groups: dict[str, list[int]] = {}
    try:
        envs, receiver_text = receivers(procs, groups)
        names = ["bare", *envs, "prometheus_flask_exporter"]
        ports = {name: free_port() for name in names}
        pfe_env = {
            "PROMETHEUS_MULTIPROC_DIR": multiproc_dir,
            "PFE_METRICS_PORT": str(free_port()),
            "PFE_SERVER": server,
        }
        apps = {
            "bare": (example, "app:app", {"STATSD_INSTRUMENT": "0"}),
            **{name: (example, "app:app", env) for name, env in envs.items()},
            "prometheus_flask_exporter": (ROOT / "benchmarks", "flask_pfe_app:app", pfe_env),
        }
        launch_all(launch, ports, procs, groups, apps)
        results = interleaved(ports, ROUNDS, SECONDS, groups)
        traffic = receiver_traffic(groups)
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(multiproc_dir, ignore_errors=True)
    return (
        ratio_table(results) + "\n\n" + traffic,
        VARIANT_TEXT.format(receiver=receiver_text),
    )


def run() -> str:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian package 'wrk'; make system-deps)")
    parts = []
    for server, launch, flags in (
        ("uwsgi", uwsgi, "master + 2 workers, request log off"),
        ("gunicorn", gunicorn, "2 sync workers, access log off"),
    ):
        print(f" {server}", file=sys.stderr, flush=True)
        table, variants = flask_section(server, launch)
        parts.append(
            f"### {server}\n\n`{' '.join(WRK)} -d{SECONDS}s` against `GET /test/` of "
            f"`examples/flask_app` under {server} ({flags}), {ROUNDS} interleaved rounds per variant. "
            f"{variants} "
            "prometheus_flask_exporter keeps prometheus_client multiprocess files.\n\n" + table + "\n"
        )
    return "\n".join(parts)


if __name__ == "__main__":
    print(run())
