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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TITLE = "Flask under uwsgi and gunicorn: request throughput with and without metrics"
ROUNDS = 5
SECONDS = 5
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


def wrk(port: int, seconds: int) -> float:
    out = subprocess.run(
        [*WRK, f"-d{seconds}s", f"http://127.0.0.1:{port}/test/"], capture_output=True, text=True, check=True
    ).stdout
    # uwsgi's --http-socket closes every connection after its response: wrk counts those as "read" errors
    errors = re.search(r"Non-2xx or 3xx|Socket errors: connect [1-9]|write [1-9]|timeout [1-9]", out)
    if errors:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def interleaved(ports: dict[str, int], rounds: int, seconds: int) -> dict[str, list[float]]:
    """req/s of each variant (in ``ports`` order) per round, after a warm-up; each round starts elsewhere."""
    names = list(ports)
    for name in names:  # warm up: imports, first requests, caches
        wrk(ports[name], 1)
    results: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            results[name].append(wrk(ports[name], seconds))
            print(f"  round {r + 1} {name}: {results[name][-1]:.0f} req/s", file=sys.stderr, flush=True)
    return results


def ratio_table(results: dict[str, list[float]]) -> str:
    """Markdown rows: median req/s of each variant, its ratio to ``bare``, and every round."""
    bare = statistics.median(results["bare"])
    rows = ["| variant | median req/s | vs bare | rounds (req/s) |", "|---|---:|---:|---|"]
    for name, values in results.items():
        median = statistics.median(values)
        rounds = ", ".join(f"{v:.0f}" for v in values)
        rows.append(f"| {name} | {median:.0f} | {median / bare:.3f}x | {rounds} |")
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


def receivers(procs: list) -> tuple[dict[str, dict[str, str]], str]:
    """Start both exporters (appended to ``procs``); the client environment of each receiving variant."""
    envs: dict[str, dict[str, str]] = {}
    text = ""
    for name in RECEIVING:
        port = free_port()
        receiver, text = start_receiver(port, per_datagram=name.endswith("per_datagram"))
        procs.append(receiver)
        envs[name] = {"STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(port)}
    envs["statsd_instrument_null"] = {"STATSD_PROTOCOL": "null"}
    return envs, text


def flask_section(server: str, launch) -> str:
    """Bare, ours (two receivers), null and prometheus_flask_exporter under ``launch`` (uwsgi or gunicorn)."""
    multiproc_dir = tempfile.mkdtemp(prefix="bench-pfe-")
    example = ROOT / "examples" / "flask_app"
    procs: list[subprocess.Popen] = []
    try:
        envs, receiver_text = receivers(procs)
        names = ["bare", *envs, "prometheus_flask_exporter"]
        ports = {name: free_port() for name in names}
        procs.append(launch(ports["bare"], example, "app:app", {"STATSD_INSTRUMENT": "0"}))
        for name, env in envs.items():
            procs.append(launch(ports[name], example, "app:app", env))
        pfe_env = {
            "PROMETHEUS_MULTIPROC_DIR": multiproc_dir,
            "PFE_METRICS_PORT": str(free_port()),
            "PFE_SERVER": server,
        }
        procs.append(
            launch(ports["prometheus_flask_exporter"], ROOT / "benchmarks", "flask_pfe_app:app", pfe_env)
        )
        results = interleaved(ports, ROUNDS, SECONDS)
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(multiproc_dir, ignore_errors=True)
    return ratio_table(results), VARIANT_TEXT.format(receiver=receiver_text)


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
