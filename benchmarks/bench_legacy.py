"""Legacy clients: cost per call of the ``statsd`` package's StatsClient vs statsd_instrument.legacy's.

Both send the same lines to a UDP receiver on 127.0.0.1 (drained by another process). The original sends one
datagram per call; ours batches lines into datagrams of at most ``maxudpsize`` (512 by default, as the
original) and flushes once per round (the flush is inside the measured time). Rounds alternate between
the clients; the table gives medians over the rounds and the ratio.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import statsd as original

from benchmarks.bench_client import _DRAIN
from statsd_instrument.legacy import StatsClient

TITLE = "Legacy statsd-package clients: cost per call"
CALLS = 20_000
ROUNDS = 9


class _Drain:
    """A UDP receiver in another process (as an exporter is), reading and dropping every datagram: a
    receiving thread in this process would take the GIL from the client on every datagram it wakes for."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", _DRAIN], stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()


def _workload(client, flush) -> float:
    """Seconds per call for CALLS calls: incr, timing, gauge in turn (what a request handler does)."""
    started = time.perf_counter()
    for index in range(CALLS // 3):
        client.incr("shop.checkout.GET.200")
        client.timing("shop.checkout.GET.200", 12.5)
        client.gauge("shop.queue.size", index, delta=True)
    flush()
    return (time.perf_counter() - started) / (CALLS // 3 * 3)


def _core_calls(port: int) -> str:
    """Markdown table: the core Client's ``send_line`` (what the legacy clients call) vs ``increment``, with
    the same line on one client (1,432-byte datagrams) and on one with the legacy default 512 bytes."""
    from statsd_instrument import Client

    line_1432 = Client(host="127.0.0.1", port=port, strict=False)
    line_512 = Client(host="127.0.0.1", port=port, strict=False, max_datagram_bytes=512)
    calls = {
        "Client.increment (1,432-byte datagrams)": lambda: line_1432.increment("shop.checkout.GET.200"),
        "Client.send_line (1,432-byte datagrams)": lambda: line_1432.send_line("shop.checkout.GET.200:1|c"),
        "Client.send_line (512-byte datagrams)": lambda: line_512.send_line("shop.checkout.GET.200:1|c"),
    }
    results: dict = {name: [] for name in calls}
    try:
        for round_ in range(ROUNDS):
            names = list(calls)
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                started = time.perf_counter()
                for _ in range(CALLS):
                    calls[name]()
                line_1432.flush()
                line_512.flush()
                results[name].append((time.perf_counter() - started) / CALLS)
    finally:
        line_1432.close()
        line_512.close()
    base = statistics.median(results["Client.increment (1,432-byte datagrams)"])
    rows = [
        f"| core call, line `shop.checkout.GET.200:1\\|c` | µs per call (median of {ROUNDS} x {CALLS}) "
        "| vs increment |",
        "|---|---:|---:|",
    ]
    for name, samples in results.items():
        median = statistics.median(samples)
        rows.append(f"| {name} | {median * 1e6:.2f} | {median / base:.2f}x |")
    return "\n".join(rows) + "\n"


def run() -> str:
    """Markdown tables: median µs per call for each client and the ratio; then the core calls."""
    drain = _Drain()
    theirs = original.StatsClient("127.0.0.1", drain.port)
    ours = StatsClient("127.0.0.1", drain.port)
    ours_1432 = StatsClient("127.0.0.1", drain.port, maxudpsize=1432)
    results: dict = {
        "statsd 4.x StatsClient": [],
        "legacy StatsClient": [],
        "legacy StatsClient, maxudpsize=1432": [],
    }
    try:
        for round_ in range(ROUNDS):
            order = [
                ("statsd 4.x StatsClient", theirs, lambda: None),
                ("legacy StatsClient", ours, ours.flush),
                ("legacy StatsClient, maxudpsize=1432", ours_1432, ours_1432.flush),
            ]
            if round_ % 2:
                order.reverse()
            for name, client, flush in order:
                results[name].append(_workload(client, flush))
        core = _core_calls(drain.port)
    finally:
        theirs.close()
        ours.close()
        ours_1432.close()
        drain.close()
    base = statistics.median(results["statsd 4.x StatsClient"])
    rows = [
        f"| client | µs per call (median of {ROUNDS} rounds x {CALLS} calls) | vs statsd 4.x |",
        "|---|---:|---:|",
    ]
    for name, samples in results.items():
        median = statistics.median(samples)
        rows.append(f"| {name} | {median * 1e6:.2f} | {median / base:.2f}x |")
    return "\n".join(rows) + "\n\n" + core


if __name__ == "__main__":
    print(run())
