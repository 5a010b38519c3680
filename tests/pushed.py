"""Helpers for the request-metrics tests: a real client sending to the UDP collector, and what it pushed."""

from __future__ import annotations

import contextlib
from typing import Iterator

from statsd_instrument import Client
from statsd_instrument.testing import parse_records
from tests.helpers import UdpCollector


class Pushed:
    """What reached the collector, one datagram at a time, parsed into (name, value, type, tags) records."""

    def __init__(self, collector: UdpCollector) -> None:
        self.collector = collector

    def wait(self, n_lines: int) -> list[tuple[str, float, str, dict[str, str]]]:
        lines = self.collector.wait_for_lines(n_lines, timeout_s=5)
        return [(r.name, r.value, r.type, r.tags) for line in lines for r in parse_records(line)]

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
