"""``--statsd.relay.address``: copy every received statsd line, unchanged, to another statsd server over UDP.

What statsd_exporter's relay does (``pkg/relay``, called by every listener for each line): each non-empty
line received over UDP, TCP or unixgram is relayed as is, valid or not (lines the exporter rejects too),
followed by ``\\n``; lines are packed into datagrams of at most ``--statsd.relay.packet-length`` bytes
(default 1400), and a line longer than ``packet-length - 1`` bytes is not relayed but counted. Per target it
counts ``statsd_exporter_relay_packets_total``, ``_relay_lines_relayed_total`` and
``_relay_long_lines_total`` (label ``target``).

Differences, on purpose: the packed lines leave at the end of each batch of received datagrams (a TCP read),
not on a 1-second ticker, so nothing waits; and a failed send is counted in ``failed`` and logged now and
then, where the Go relay stops relaying for good after its first send error.

>>> import socket
>>> sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
>>> sink.bind(("127.0.0.1", 0))
>>> relay = LineRelay(f"127.0.0.1:{sink.getsockname()[1]}", packet_length=20)
>>> relay.relay_datagrams([b"a.b:1|c\\nc.d:2|g\\n", b"e.f:3|ms"])
>>> relay.flush()
>>> sink.recv(100), sink.recv(100)
(b'a.b:1|c\\nc.d:2|g\\n', b'e.f:3|ms\\n')
>>> relay.packets, relay.lines, relay.long_lines
(2, 3, 0)
>>> relay.close(); sink.close()
"""

from __future__ import annotations

import socket
import sys
from typing import Iterable

from statsd_instrument.validation import parse_host_port

DEFAULT_PACKET_LENGTH = 1400
MAX_PACKET_LENGTH = 65507  # the largest UDP payload over IPv4


def parse_target(address: str, field: str = "--statsd.relay.address") -> tuple:
    """``host:port`` (``[v6]:port`` too; an empty host is this machine) -> (host, port).

    >>> parse_target("old-statsd:8125"), parse_target(":8125")
    (('old-statsd', 8125), ('127.0.0.1', 8125))
    >>> parse_target("old-statsd")
    Traceback (most recent call last):
    ValueError: --statsd.relay.address='old-statsd': expected HOST:PORT
    """
    return parse_host_port(address, field)


class LineRelay:
    """Relays statsd lines to one UDP target, packed into datagrams of at most ``packet_length`` bytes.

    The target is resolved once, here (an unresolvable name is a ValueError naming the flag and the value,
    as the Go exporter refuses to start). Not thread-safe: one listener thread calls it.

    >>> LineRelay("127.0.0.1:8125", packet_length=0)
    Traceback (most recent call last):
    ValueError: --statsd.relay.packet-length=0: expected 1 to 65507 bytes
    """

    def __init__(self, address: str, packet_length: int = DEFAULT_PACKET_LENGTH) -> None:
        if not 0 < packet_length <= MAX_PACKET_LENGTH:
            raise ValueError(
                f"--statsd.relay.packet-length={packet_length}: expected 1 to {MAX_PACKET_LENGTH} bytes"
            )
        host, port = parse_target(address)
        try:
            family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except OSError as err:
            raise ValueError(f"--statsd.relay.address={address!r}: cannot resolve ({err})") from None
        self._addr = addr
        self.target = address
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._limit = packet_length
        self._pending: list = []
        self._size = 0
        self.packets = 0  # datagrams sent (statsd_exporter_relay_packets_total)
        self.lines = 0  # lines relayed (statsd_exporter_relay_lines_relayed_total)
        self.long_lines = 0  # lines too long to relay (statsd_exporter_relay_long_lines_total)
        self.failed = 0  # datagrams that could not be sent

    def relay_lines(self, lines: Iterable[bytes]) -> None:
        """Queue lines (without their newline); sends a full datagram whenever the next line would not fit.

        >>> sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        >>> sink.bind(("127.0.0.1", 0))
        >>> relay = LineRelay(f"127.0.0.1:{sink.getsockname()[1]}", packet_length=8)
        >>> relay.relay_lines([b"", b"a:1|c", b"too.long:1|c"])
        >>> relay.close(); sink.recv(100), relay.lines, relay.long_lines
        (b'a:1|c\\n', 1, 1)
        >>> sink.close()
        """
        limit = self._limit
        for line in lines:
            size = len(line) + 1
            if size == 1:
                continue
            if size > limit:
                self.long_lines += 1
                continue
            if self._size + size > limit:
                self.flush()
            self._pending.append(line)
            self._size += size
            self.lines += 1

    def relay_datagrams(self, datagrams: Iterable[bytes]) -> None:
        """Queue every line of each datagram (split at ``\\n``, as the exporter splits them)."""
        for data in datagrams:
            self.relay_lines(data.split(b"\n"))

    def flush(self) -> None:
        """Send the queued lines as one datagram (each line followed by ``\\n``)."""
        if not self._pending:
            return
        payload = b"\n".join(self._pending) + b"\n"
        self._pending, self._size = [], 0
        self.packets += 1
        try:
            self._sock.sendto(payload, self._addr)
        except OSError as err:
            self.failed += 1
            if self.failed in (1, 10, 100, 1000) or self.failed % 10000 == 0:
                print(
                    f"statsd-instrument exporter: relay to {self.target} failed ({err}); "
                    f"{self.failed} datagrams lost so far",
                    file=sys.stderr,
                )

    def close(self) -> None:
        """Flush and close the socket."""
        self.flush()
        self._sock.close()
