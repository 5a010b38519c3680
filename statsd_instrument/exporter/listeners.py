"""Socket listeners: UDP, TCP and unixgram statsd input, served by one selector thread.

Datagram sockets are drained without blocking until empty on every wake-up, so a burst costs one
``select`` and then one ``recv`` per datagram. After a wake-up that found a few datagrams, the thread
pauses for :data:`COALESCE_S` before it waits again: under a steady stream (one datagram per web request)
the datagrams gather in the socket buffer and are handled in batches, instead of each one waking this
process (a sender's ``sendto`` to a waiting reader also pays for that wake-up). An idle listener waits in
``select`` as before; a heavy stream (a wake-up that found :data:`COALESCE_BELOW` or more) is read on at
once.

TCP connections are read line by line like statsd_exporter (``\\r\\n`` or ``\\n``; a line of 4096 bytes or
more closes the connection and is counted as too long).

>>> from statsd_instrument.mapping import parse_mapping
>>> from statsd_instrument.exporter.ingest import Ingestor
>>> ingest = Ingestor(parse_mapping("{}"))
>>> loop = ListenerLoop(ingest, udp="127.0.0.1:0")
>>> loop.start()
>>> with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
...     _ = s.sendto(b"hits:1|c", ("127.0.0.1", loop.udp_port))
>>> loop.wait_for_packets(1)
True
>>> loop.stop()
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import sys
import threading
import time
from typing import Mapping, cast

from statsd_instrument.exporter.ingest import Ingestor
from statsd_instrument.validation import parse_host_port

TCP_MAX_LINE = 4096
#: the environment variable that sets :data:`COALESCE_S` in milliseconds (0: no pause, like the Go exporter)
COALESCE_ENV = "STATSD_INSTRUMENT_EXPORTER_COALESCE_MS"


def coalesce_seconds(env: Mapping[str, str] = os.environ) -> float:
    """The read-coalescing pause from ``env`` (default 4 ms); a bad value raises naming the variable.

    >>> coalesce_seconds({}), coalesce_seconds({COALESCE_ENV: "0"})
    (0.004, 0.0)
    >>> coalesce_seconds({COALESCE_ENV: "soon"})
    Traceback (most recent call last):
    ...
    ValueError: STATSD_INSTRUMENT_EXPORTER_COALESCE_MS='soon': expected milliseconds between 0 and 100
    """
    raw = env.get(COALESCE_ENV, "4")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise ValueError(f"{COALESCE_ENV}={raw!r}: expected milliseconds between 0 and 100")
    return value / 1000.0


#: after a wake-up that read datagrams, pause this long before waiting again (at most ~250 wake-ups/s
#: under load; a line is handled at most this much later, which no scrape can see)
COALESCE_S = coalesce_seconds()
#: ... unless a wake-up read this many or more: the stream is heavy, read on at once (no buffer overflow)
COALESCE_BELOW = 64
DEFAULT_READ_BUFFER = 8 * 1024 * 1024


def parse_address(address: str) -> tuple:
    """``host:port`` as Go's net package reads it; an empty host means every interface.

    >>> parse_address(":9125"), parse_address("127.0.0.1:0"), parse_address("[::1]:80")
    (('0.0.0.0', 9125), ('127.0.0.1', 0), ('::1', 80))
    """
    return parse_host_port(address, "address", default_host="0.0.0.0", listen=True)


def _bind(kind: int, address: str) -> socket.socket:
    host, port = parse_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _set_read_buffer(sock: socket.socket, size: int) -> None:
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    if force is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, force, size)
            return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


class ListenerLoop:
    """Owns the statsd sockets and the thread that reads them; ``start()``/``stop()``.

    >>> from statsd_instrument.mapping import parse_mapping
    >>> loop = ListenerLoop(Ingestor(parse_mapping("{}")), tcp="127.0.0.1:0")
    >>> loop.start(); loop.tcp_port > 0
    True
    >>> loop.stop()
    """

    def __init__(
        self,
        ingest: Ingestor,
        udp: str = "",
        tcp: str = "",
        unixgram: str = "",
        unixsocket_mode: str = "755",
        read_buffer: int = 0,
        relays: list | None = None,
    ) -> None:
        self.ingest = ingest
        self.relays: list = relays if relays is not None else []  # LineRelay per --statsd.relay.address
        self.udp_address, self.tcp_address, self.unixgram_path = udp, tcp, unixgram
        self.unixsocket_mode = unixsocket_mode
        self.read_buffer = read_buffer or DEFAULT_READ_BUFFER
        self.udp_port = 0
        self.tcp_port = 0
        self._selector: selectors.BaseSelector | None = None
        self._sockets: list = []
        self._connections: dict = {}
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._stopping = False
        self._packets = 0

    # --- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Bind every configured socket (OSError/ValueError if one cannot be bound), start the thread.

        >>> from statsd_instrument.mapping import parse_mapping
        >>> ListenerLoop(Ingestor(parse_mapping("{}")), udp="nonsense").start()
        Traceback (most recent call last):
        ...
        ValueError: address='nonsense': expected HOST:PORT
        """
        self._selector = selector = selectors.DefaultSelector()
        try:
            if self.udp_address:
                sock = _bind(socket.SOCK_DGRAM, self.udp_address)
                self._add(selector, sock, ("datagram", "udp_packets"))
                _set_read_buffer(sock, self.read_buffer)
                self.udp_port = sock.getsockname()[1]
            if self.tcp_address:
                sock = _bind(socket.SOCK_STREAM, self.tcp_address)
                sock.listen(128)
                self._add(selector, sock, ("accept", None))
                self.tcp_port = sock.getsockname()[1]
            if self.unixgram_path:
                if os.path.exists(self.unixgram_path):
                    raise OSError(f"unixgram socket {self.unixgram_path} already exists")
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sockets.append(sock)
                sock.bind(self.unixgram_path)
                os.chmod(self.unixgram_path, int(self.unixsocket_mode, 8))
                _set_read_buffer(sock, self.read_buffer)
                self._add(selector, sock, ("datagram", "unixgram_packets"))
        except BaseException:
            self._close_all()
            raise
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        selector.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._thread = threading.Thread(
            target=self._run, args=(selector,), name="statsd-listeners", daemon=True
        )
        self._thread.start()

    def _add(self, selector: selectors.BaseSelector, sock: socket.socket, data: tuple) -> None:
        if sock not in self._sockets:
            self._sockets.append(sock)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, data)

    def stop(self) -> None:
        """Stop the thread, close every socket and remove the unixgram socket file.

        >>> from statsd_instrument.mapping import parse_mapping
        >>> loop = ListenerLoop(Ingestor(parse_mapping("{}")), udp="127.0.0.1:0")
        >>> loop.start(); loop.stop(); loop.stop()  # stopping twice is harmless
        """
        self._stopping = True
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self._close_all()

    def _close_all(self) -> None:
        for conn in list(self._connections):
            conn.close()
        self._connections.clear()
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        if self.unixgram_path:
            with contextlib.suppress(OSError):
                os.unlink(self.unixgram_path)

    def wait_for_packets(self, count: int, timeout_s: float = 5.0) -> bool:
        """Wait until ``count`` datagrams in total were processed (for tests); True if they were.

        >>> from statsd_instrument.mapping import parse_mapping
        >>> ListenerLoop(Ingestor(parse_mapping("{}"))).wait_for_packets(1, timeout_s=0.01)
        False
        """
        deadline = time.monotonic() + timeout_s
        while self._packets < count and time.monotonic() < deadline:
            time.sleep(0.005)
        return self._packets >= count

    # --- the loop -----------------------------------------------------------------------------------
    def _run(self, selector: selectors.BaseSelector) -> None:
        next_expiry = time.monotonic() + 1.0
        while not self._stopping:
            try:
                ready = selector.select(timeout=1.0)
            except OSError:  # pragma: no cover - selector closed under us
                return
            coalesce = False
            for key, _ in ready:
                role, counter = key.data
                sock = cast(socket.socket, key.fileobj)  # every role but "wake" registered a socket
                try:
                    if role == "datagram":
                        coalesce = self._drain(sock, counter) or coalesce
                    elif role == "accept":
                        self._accept(selector, sock)
                    elif role == "conn":
                        self._read_conn(selector, sock)
                except Exception as err:  # never let one bad read kill the listener
                    print(f"statsd-instrument exporter: listener error: {err!r}", file=sys.stderr)
            now = time.monotonic()
            if now >= next_expiry:
                self.ingest.expire(now)
                next_expiry = now + 1.0
            if coalesce and not self._stopping:
                time.sleep(COALESCE_S)

    def _drain(self, sock: socket.socket, counter: str) -> bool:
        """Read and handle the datagrams waiting on ``sock`` (up to 256); whether to pause before the next
        wait (there were some, but fewer than :data:`COALESCE_BELOW`)."""
        ingest = self.ingest
        recv = sock.recv
        batch: list[bytes] = []
        while len(batch) < 256:
            try:
                batch.append(recv(65535))
            except (BlockingIOError, InterruptedError):
                break
        if not batch:
            return False
        ingest.handle_datagrams(batch, counter)
        for relay in self.relays:  # every line, valid or not (as statsd_exporter relays them)
            relay.relay_datagrams(batch)
            relay.flush()
        self._packets += len(batch)
        return len(batch) < COALESCE_BELOW and COALESCE_S > 0

    def _accept(self, selector: selectors.BaseSelector, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        with self.ingest.lock:
            self.ingest.stats.tcp_connections += 1
        conn.setblocking(False)
        self._connections[conn] = b""
        selector.register(conn, selectors.EVENT_READ, ("conn", None))

    def _relay_lines(self, lines: list) -> None:
        for relay in self.relays:
            relay.relay_lines(lines)
            relay.flush()

    def _close_conn(
        self, selector: selectors.BaseSelector, conn: socket.socket, remainder: bytes = b""
    ) -> None:
        if remainder:
            self.ingest.handle_lines([remainder.rstrip(b"\r")])
            self._relay_lines([remainder.rstrip(b"\r")])
        selector.unregister(conn)
        self._connections.pop(conn, None)
        conn.close()

    def _read_conn(self, selector: selectors.BaseSelector, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            with self.ingest.lock:
                self.ingest.stats.tcp_errors += 1
            self._close_conn(selector, conn)
            return
        if not data:
            self._close_conn(selector, conn, self._connections.get(conn, b""))
            return
        buffer = self._connections[conn] + data
        *lines, rest = buffer.split(b"\n")
        good = []
        for line in lines:
            if len(line) >= TCP_MAX_LINE:
                break
            good.append(line[:-1] if line.endswith(b"\r") else line)
        too_long = len(good) < len(lines) or len(rest) >= TCP_MAX_LINE
        if good:
            self.ingest.handle_lines(good)
            self._relay_lines(good)
        if too_long:
            with self.ingest.lock:
                self.ingest.stats.tcp_too_long += 1
            self._close_conn(selector, conn)
            return
        self._connections[conn] = rest
