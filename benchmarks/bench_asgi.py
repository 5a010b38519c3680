"""Throughput of the example Starlette app under uvicorn (1 worker): bare vs StatsdASGIMiddleware.

wrk (2 threads, 16 connections) against ``GET /test/``; rounds interleave the variants (order rotated each
round); medians and ratios to bare are reported. The variants are ``bench_flask``'s: the embedded exporter
as shipped and with its read-coalescing pause off (a receiver that wakes for every datagram, like the Go
one), and the null protocol (the middleware's Python cost alone). Process and wrk helpers are
``bench_flask``'s.
"""

from __future__ import annotations

import shutil
import subprocess

from benchmarks.bench_flask import (
    BIN,
    ROOT,
    VARIANT_TEXT,
    free_port,
    interleaved,
    ratio_table,
    receiver_traffic,
    receivers,
    start,
    stop,
    wait_for_port,
)

TITLE = "Starlette under uvicorn: request throughput with and without StatsdASGIMiddleware"
ROUNDS = 7
SECONDS = 3


def uvicorn(port: int, target: str, env: dict[str, str]) -> subprocess.Popen:
    argv = [str(BIN / "uvicorn"), target, "--app-dir", str(ROOT / "examples" / "asgi_app")]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    proc = start(argv, env)
    wait_for_port(port, proc)
    return proc


def run() -> str:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian package 'wrk'; make system-deps)")
    procs: list[subprocess.Popen] = []
    groups: dict[str, list[int]] = {}
    try:
        envs, receiver_text = receivers(procs, groups)
        ports = {name: free_port() for name in ["bare", *envs]}
        apps = {"bare": ("app:starlette_app", {}), **{name: ("app:app", env) for name, env in envs.items()}}
        for name, (target, env) in apps.items():
            proc = uvicorn(ports[name], target, env)
            procs.append(proc)
            groups.setdefault(name, []).append(proc.pid)
        results = interleaved(ports, ROUNDS, SECONDS, groups)
        traffic = receiver_traffic(groups)
    finally:
        for proc in reversed(procs):
            stop(proc)
    return (
        f"`wrk -t2 -c16 -d{SECONDS}s` against `GET /test/` of `examples/asgi_app` under uvicorn (one "
        f"process, access log off), {ROUNDS} interleaved rounds per variant. "
        + VARIANT_TEXT.format(receiver=receiver_text)
        + "\n\n"
        + ratio_table(results)
        + "\n\n"
        + traffic
        + "\n"
    )


if __name__ == "__main__":
    print(run())
