"""Helpers for the request-metrics tests: a real client sending to the UDP collector, and what it pushed."""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

from statsd_instrument import Client
from statsd_instrument.testing import parse_records
from tests.helpers import UdpCollector


class Pushed:
    """What reached the collector, one datagram at a time, parsed into (name, value, type, tags) records."""

    def __init__(self, collector: UdpCollector) -> None:
        self.collector = collector

    def wait(self, n_lines: int) -> list[tuple[str, float, str, dict[str, str]]]:
        """The records of at least ``n_lines`` metric calls (or all that came within 5 s), one per call: the
        client merges calls within its flush window (counter increments summed, samples in multi-value
        lines), so a counter record of N > 1 stands for N increments by 1 (what these tests send)."""
        deadline = time.monotonic() + 5
        while True:
            records = [
                (r.name, 1.0 if r.type == "c" else r.value, r.type, r.tags)
                for line in self.collector.lines()
                for r in parse_records(line)
                for _ in range(int(r.value) if r.type == "c" and r.value > 1 else 1)
            ]
            if len(records) >= n_lines or time.monotonic() >= deadline:
                return records
            time.sleep(0.02)

    def named(self, name: str, n_lines: int) -> list[tuple[float, str, dict[str, str]]]:
        return [(v, t, tags) for n, v, t, tags in self.wait(n_lines) if n == name]


@contextlib.contextmanager
def client_for(collector: UdpCollector) -> Iterator[Client]:
    """A real client sending to ``collector``, closed afterwards."""
    c = Client(host="127.0.0.1", port=collector.port)
    try:
        yield c
    finally:
        close = getattr(c, "close", None)
        if close is not None:
            close()
