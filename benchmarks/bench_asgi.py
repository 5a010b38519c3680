"""Throughput of the example Starlette app under uvicorn (1 worker): bare vs StatsdASGIMiddleware.

wrk (2 threads, 16 connections) against ``GET /test/``; rounds interleave the variants (order rotated each
round); medians and ratios to bare are reported. The instrumented variant pushes to the embedded exporter
on the same machine (the same receiver as ``bench_flask``); a third variant sends nothing (null protocol):
the middleware's Python cost alone. Process and wrk helpers are ``bench_flask``'s.
"""

from __future__ import annotations

import shutil
import subprocess

from benchmarks.bench_flask import (
    BIN,
    ROOT,
    free_port,
    interleaved,
    ratio_table,
    start,
    start_receiver,
    stop,
    wait_for_port,
)

TITLE = "Starlette under uvicorn: request throughput with and without StatsdASGIMiddleware"
ROUNDS = 5
SECONDS = 4


def uvicorn(port: int, target: str, env: dict[str, str]) -> subprocess.Popen:
    argv = [str(BIN / "uvicorn"), target, "--app-dir", str(ROOT / "examples" / "asgi_app")]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    proc = start(argv, env)
    wait_for_port(port, proc)
    return proc


def run() -> str:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian package 'wrk'; make system-deps)")
    statsd_port = free_port()
    names = ["bare", "statsd_instrument", "statsd_instrument_null"]
    ports = {name: free_port() for name in names}
    procs: list[subprocess.Popen] = []
    try:
        receiver, receiver_text = start_receiver(statsd_port)
        procs.append(receiver)
        procs.append(uvicorn(ports["bare"], "app:starlette_app", {}))
        statsd_env = {"STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(statsd_port)}
        procs.append(uvicorn(ports["statsd_instrument"], "app:app", statsd_env))
        procs.append(uvicorn(ports["statsd_instrument_null"], "app:app", {"STATSD_PROTOCOL": "null"}))
        results = interleaved(ports, ROUNDS, SECONDS)
    finally:
        for proc in reversed(procs):
            stop(proc)
    return (
        f"`wrk -t2 -c16 -d{SECONDS}s` against `GET /test/` of `examples/asgi_app` under uvicorn (one "
        f"process, access log off), {ROUNDS} interleaved rounds per variant. The middleware pushes to "
        f"{receiver_text} on the same machine; `statsd_instrument_null` sends nothing "
        "(`STATSD_PROTOCOL=null`).\n\n" + ratio_table(results) + "\n"
    )


if __name__ == "__main__":
    print(run())
