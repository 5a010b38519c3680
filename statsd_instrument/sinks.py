"""Where datagrams go: tiny sink classes sharing one interface, ``send(payload: bytes)`` and ``close()``.

A sink opens its socket lazily on the first ``send`` and raises ``OSError`` on failure; the transport (which
counts and reports errors) decides what a failure means. Nothing here ever blocks for long: unixgram sockets
are non-blocking (a full receiver drops, it does not stall a request) and TCP connects with a short timeout.

>>> sink = make_sink(Settings(protocol="null"))
>>> sink.send(b"a:1|c")
>>> sink.close()
"""

from __future__ import annotations

import socket
import time

from statsd_instrument.config import Settings

#: after a failed name resolution, do not try again for this long (sends in between are dropped)
RESOLVE_RETRY_S = 5.0


class NullSink:
    """Sends nothing (test mode, or metrics switched off).

    >>> NullSink().send(b"x:1|c")
    """

    def send(self, payload: bytes) -> None:
        """Discard ``payload``."""

    def close(self) -> None:
        """Nothing to close."""


class UdpSink:
    """Unconnected UDP socket; the address is resolved once (retried after failures).

    >>> sink = UdpSink("127.0.0.1", 9)
    >>> sink.send(b"x:1|c")
    >>> sink.close()
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self._addr: tuple | None = None
        self._resolve_failed_at = -RESOLVE_RETRY_S

    def _open(self) -> None:
        now = time.monotonic()
        if now - self._resolve_failed_at < RESOLVE_RETRY_S:
            raise OSError(f"cannot resolve {self.host!r} (retrying in a few seconds)")
        try:
            family, _, _, _, addr = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        except OSError:
            self._resolve_failed_at = now
            raise
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._addr = addr

    def send(self, payload: bytes) -> None:
        """Send one datagram."""
        if self._sock is None:
            self._open()
        self._sock.sendto(payload, self._addr)  # type: ignore[union-attr]

    def close(self) -> None:
        """Close the socket (a later ``send`` reopens it)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class UnixgramSink:
    """Non-blocking unix datagram socket sending to a path.

    >>> sink = UnixgramSink("/nonexistent/statsd.sock")
    >>> sink.send(b"x:1|c")
    Traceback (most recent call last):
    ...
    FileNotFoundError: [Errno 2] No such file or directory
    >>> sink.close()
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock: socket.socket | None = None

    def send(self, payload: bytes) -> None:
        """Send one datagram; a full receiver raises ``BlockingIOError`` (counted as a drop)."""
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        self._sock.sendto(payload, self.path)

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


def make_sink(settings: Settings):  # -> NullSink | UdpSink | UnixgramSink | TcpSink
    """The sink for ``settings.protocol``.

    >>> type(make_sink(Settings())).__name__
    'UdpSink'
    """
    if settings.protocol == "unixgram":
        return UnixgramSink(settings.socket_path or "")
    if settings.protocol == "tcp":
        return TcpSink(settings.host, settings.port)
    if settings.protocol == "null":
        return NullSink()
    return UdpSink(settings.host, settings.port)
