"""Where datagrams go: tiny sink classes sharing one interface, ``send(payload: bytes)`` and ``close()``.

A sink opens its socket lazily on the first ``send`` and raises ``OSError`` on failure; the transport (which
counts and reports errors) decides what a failure means. Nothing here ever blocks for long: a unixgram send
waits at most ``UNIXGRAM_WAIT_S`` for a receiver that is behind, and TCP connects with a short timeout.

>>> sink = make_sink(Settings(protocol="null"))
>>> sink.send(b"a:1|c")
>>> sink.close()
"""

from __future__ import annotations

import socket
import time
from typing import Union

from statsd_instrument.config import Settings

#: after a failed name resolution, do not try again for this long (sends in between are dropped)
RESOLVE_RETRY_S = 5.0
#: how long a unixgram send waits for room in the receiver's queue (Linux queues only
#: ``net.unix.max_dgram_qlen`` datagrams, 10 by default, so a receiver briefly behind is common)
UNIXGRAM_WAIT_S = 0.02
#: after a send timed out (a stalled receiver), sends do not wait at all for this long
UNIXGRAM_IMPATIENT_S = 1.0


class NullSink:
    """Sends nothing (test mode, or metrics switched off).

    >>> NullSink().send(b"x:1|c")
    """

    def send(self, payload: bytes) -> None:
        """Discard ``payload``."""

    def close(self) -> None:
        """Nothing to close."""


class DatagramRefusedError(ConnectionRefusedError):
    """An earlier datagram of a connected UDP socket was refused: nothing listened at the address (an
    exporter down or restarting). The send that reports it did not go out."""


class UdpSink:
    """A connected UDP socket; the address is resolved once (retried after failures).

    Connected, so a send skips the per-call address handling of ``sendto``. A connected socket also learns
    that an earlier datagram reached no one: the ICMP port unreachable that came back is reported by the next
    send, which fails with ``ECONNREFUSED`` and does not go out. ``send`` raises :class:`DatagramRefusedError`
    then (counted in ``refusals``), and the transport sends again (with the start lines first: the exporter
    may have restarted). Linux reports one refusal per ICMP error, and answers its own addresses (loopback)
    for every datagram but another host at most once a second (a burst of 6, ``net.ipv4.icmp_ratelimit``):
    during a remote outage most datagrams are lost without a refusal. An exporter that restarts between two
    sends is never noticed.

    >>> sink = UdpSink("127.0.0.1", 9)
    >>> sink.send(b"x:1|c")
    >>> sink.close()
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self._resolve_failed_at = -RESOLVE_RETRY_S
        self.refusals = 0  # sends that reported a refused earlier datagram

    def _open(self) -> socket.socket:
        now = time.monotonic()
        if now - self._resolve_failed_at < RESOLVE_RETRY_S:
            raise OSError(f"cannot resolve {self.host!r} (retrying in a few seconds)")
        try:
            family, _, _, _, addr = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        except OSError:
            self._resolve_failed_at = now
            raise
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.connect(addr)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        return sock

    def send(self, payload: bytes) -> None:
        """Send one datagram; :class:`DatagramRefusedError` if an earlier one was refused (this one was not
        sent)."""
        sock = self._sock or self._open()
        try:
            sock.send(payload)
        except ConnectionRefusedError:
            self.refusals += 1
            address = f"{self.host}:{self.port}"
            raise DatagramRefusedError(f"a datagram to {address} was refused (nothing listening)") from None

    def close(self) -> None:
        """Close the socket (a later ``send`` reopens it)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class UnixgramSink:
    """Unix datagram socket sending to a path; waits briefly for a receiver that is behind.

    The kernel queues only a few datagrams per unix socket (``net.unix.max_dgram_qlen``, 10 by default): a
    send that finds the queue full waits up to ``UNIXGRAM_WAIT_S`` for room instead of dropping at once.
    A send that times out means a stalled receiver: for ``UNIXGRAM_IMPATIENT_S`` after it, sends do not
    wait (a full queue drops at once), so a stalled exporter cannot slow every request.

    >>> sink = UnixgramSink("/nonexistent/statsd.sock")
    >>> sink.send(b"x:1|c")
    Traceback (most recent call last):
    ...
    FileNotFoundError: [Errno 2] No such file or directory
    >>> sink.close()
    """

    def __init__(self, path: str, wait_s: float = UNIXGRAM_WAIT_S) -> None:
        self.path = path
        self.wait_s = wait_s
        self._sock: socket.socket | None = None
        self._impatient_until = 0.0

    def send(self, payload: bytes) -> None:
        """Send one datagram; a queue still full after the wait raises ``OSError``."""
        sock = self._sock
        if sock is None:
            sock = self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.settimeout(self.wait_s)
        elif self._impatient_until and time.monotonic() >= self._impatient_until:
            self._impatient_until = 0.0
            sock.settimeout(self.wait_s)
        try:
            sock.sendto(payload, self.path)
        except socket.timeout:  # TimeoutError from Python 3.10
            self._impatient_until = time.monotonic() + UNIXGRAM_IMPATIENT_S
            sock.setblocking(False)
            raise

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class TcpSink:
    """A TCP stream of newline-terminated lines; reconnects after an error.

    >>> sink = TcpSink("127.0.0.1", 9)
    >>> sink.close()
    """

    def __init__(self, host: str, port: int, timeout_s: float = 1.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._sock: socket.socket | None = None

    def send(self, payload: bytes) -> None:
        """Write ``payload`` plus a newline; on error the connection is dropped and re-made next time."""
        if self._sock is None:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        try:
            self._sock.sendall(payload + b"\n")
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        """Close the connection."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


#: Any sink :func:`make_sink` returns.
Sink = Union[NullSink, UdpSink, UnixgramSink, TcpSink]


def make_sink(settings: Settings) -> Sink:
    """The sink for ``settings.protocol``.

    >>> type(make_sink(Settings())).__name__
    'UdpSink'
    """
    timeout_s = settings.timeout_s  # a legacy client's ``timeout``; None: each sink's default
    if settings.protocol == "unixgram":
        return UnixgramSink(settings.socket_path or "", timeout_s or UNIXGRAM_WAIT_S)
    if settings.protocol == "tcp":
        return TcpSink(settings.host, settings.port, timeout_s or 1.0)
    if settings.protocol == "null":
        return NullSink()
    return UdpSink(settings.host, settings.port)
