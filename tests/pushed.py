"""Helpers for the request-metrics tests: a real client sending to the UDP collector, and what it pushed."""

from __future__ import annotations

import contextlib
from typing import Iterator

from statsd_instrument import Client
from tests.helpers import UdpCollector


class Pushed:
    """What reached the collector, one datagram at a time, parsed into (name, value, type, tags) records."""

    def __init__(self, collector: UdpCollector) -> None:
        self.collector = collector

    def wait(self, n_lines: int) -> list[tuple[str, float, str, dict[str, str]]]:
        records = []
        for line in self.collector.wait_for_lines(n_lines, timeout_s=5):
            head, *fields = line.split("|")
            name, value = head.split(":", 1)
            tags = {}
            for field in fields[1:]:
                if field.startswith("#"):
                    tags = dict(t.split(":", 1) for t in field[1:].split(","))
            records.append((name, float(value), fields[0], tags))
        return records

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
