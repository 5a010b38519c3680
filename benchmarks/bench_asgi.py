"""Throughput of the example Starlette app under uvicorn (1 worker): bare vs StatsdASGIMiddleware.

wrk (2 threads, 16 connections) against ``GET /test/``; rounds interleave the variants (order rotated each
round); medians and ratios to bare are reported. The instrumented variant pushes to the embedded exporter
on the same machine (the same receiver as ``bench_flask``); a third variant sends nothing (null protocol):
the middleware's Python cost alone. Process and wrk helpers are ``bench_flask``'s.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys

from benchmarks.bench_flask import BIN, ROOT, free_port, start, start_receiver, stop, wait_for_port, wrk

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
        for name in names:  # warm up
            wrk(ports[name], 1)
        results: dict[str, list[float]] = {name: [] for name in names}
        for r in range(ROUNDS):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                results[name].append(wrk(ports[name], SECONDS))
                print(f"  round {r + 1} {name}: {results[name][-1]:.0f} req/s", file=sys.stderr, flush=True)
    finally:
        for proc in reversed(procs):
            stop(proc)
    bare = statistics.median(results["bare"])
    rows = ["| variant | median req/s | vs bare | rounds (req/s) |", "|---|---:|---:|---|"]
    for name in names:
        median = statistics.median(results[name])
        rounds = ", ".join(f"{v:.0f}" for v in results[name])
        rows.append(f"| {name} | {median:.0f} | {median / bare:.3f}x | {rounds} |")
    return (
        f"`wrk -t2 -c16 -d{SECONDS}s` against `GET /test/` of `examples/asgi_app` under uvicorn (one "
        f"process, access log off), {ROUNDS} interleaved rounds per variant. The middleware pushes to "
        f"{receiver_text} on the same machine; `statsd_instrument_null` sends nothing "
        "(`STATSD_PROTOCOL=null`).\n\n" + "\n".join(rows) + "\n"
    )


if __name__ == "__main__":
    print(run())
