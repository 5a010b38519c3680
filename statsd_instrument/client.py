"""The metric calls (DogStatsd-compatible signatures).

INTERIM minimal implementation from the project skeleton: one UDP datagram per call, no batching. The core
client issue replaces it (buffering, fork safety, validation) keeping these signatures.
"""

from __future__ import annotations

import os
import socket
from typing import Mapping, Sequence, Union

Tags = Union[Sequence[str], Mapping[str, object], None]


def _tag_list(tags: Tags) -> list[str]:
    if not tags:
        return []
    if isinstance(tags, Mapping):
        return [f"{k}:{v}" for k, v in tags.items()]
    return list(tags)


class Client:
    """A DogStatsD client.

    >>> statsd.increment("jobs_total", tags={"queue": "default"})
    """

    def __init__(self, host: str | None = None, port: int | None = None) -> None:
        self.host = host or os.environ.get("STATSD_HOST", "127.0.0.1")
        self.port = int(port or os.environ.get("STATSD_PORT", "9125"))
        self._sock: socket.socket | None = None

    def _send(self, name: str, value: float, kind: str, tags: Tags, sample_rate: float | None) -> None:
        line = f"{name}:{value:g}|{kind}"
        if sample_rate is not None and sample_rate != 1:
            line += f"|@{sample_rate:g}"
        tag_list = _tag_list(tags)
        if tag_list:
            line += "|#" + ",".join(tag_list)
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.sendto(line.encode(), (self.host, self.port))
        except OSError:
            pass

    def send_line(self, line: str) -> None:
        """Send one already-formatted statsd line as is (interim: one datagram)."""
        if "\n" in line:
            raise ValueError(f"statsd line contains a newline: {line!r}")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.sendto(line.encode(), (self.host, self.port))
        except OSError:
            pass

    def increment(
        self, metric: str, value: float = 1, tags: Tags = None, sample_rate: float | None = None
    ) -> None:
        """Add ``value`` to a counter."""
        self._send(metric, value, "c", tags, sample_rate)

    def decrement(
        self, metric: str, value: float = 1, tags: Tags = None, sample_rate: float | None = None
    ) -> None:
        """Subtract ``value`` from a counter."""
        self._send(metric, -value, "c", tags, sample_rate)

    def gauge(self, metric: str, value: float, tags: Tags = None, sample_rate: float | None = None) -> None:
        """Set a gauge."""
        self._send(metric, value, "g", tags, sample_rate)

    def timing(self, metric: str, value: float, tags: Tags = None, sample_rate: float | None = None) -> None:
        """Record a duration in milliseconds."""
        self._send(metric, value, "ms", tags, sample_rate)

    def histogram(
        self, metric: str, value: float, tags: Tags = None, sample_rate: float | None = None
    ) -> None:
        """Record a value in a histogram."""
        self._send(metric, value, "h", tags, sample_rate)

    def distribution(
        self, metric: str, value: float, tags: Tags = None, sample_rate: float | None = None
    ) -> None:
        """Record a value in a distribution."""
        self._send(metric, value, "d", tags, sample_rate)

    def flush(self) -> None:
        """Send whatever is buffered (nothing in this interim client)."""


statsd = Client()
