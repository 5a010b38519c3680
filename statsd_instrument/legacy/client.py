"""``StatsClient``, ``TCPStatsClient``, ``UnixSocketStatsClient``: the ``statsd`` package 4.x API.

Same constructors, methods and lines on the wire as the ``statsd`` package (pystatsd), built on
:class:`statsd_instrument.client.Client` so they gain what the original lacks: lines are batched into
datagrams, a forked worker never sends its parent's buffer, and what is buffered is flushed at exit. Every
method also takes an optional ``tags`` argument (DogStatsD ``|#k:v`` tags, which statsd_exporter turns into
labels), and the constructors take constant ``tags`` added to every line.

Differences, all on purpose: sending never raises (the original's TCP client raised socket errors into the
app); ``UnixSocketStatsClient`` sends datagrams, which is what statsd_exporter listens for
(``--statsd.listen-unixgram``). ``timeout`` bounds the TCP connect and write and the wait of a unix send.
A ``maxudpsize`` no datagram can carry (below 64 or above 65507) raises ``ValueError`` at construction:
lines are batched into datagrams of at most that size.
"""

from __future__ import annotations

import logging
import random
import socket
import time
from collections import deque
from datetime import timedelta
from typing import Any

from statsd_instrument.client import Client
from statsd_instrument.config import check_max_datagram_bytes
from statsd_instrument.legacy.tags import join_tags, tag_field
from statsd_instrument.legacy.timer import Timer
from statsd_instrument.validation import Tags

log = logging.getLogger("statsd_instrument.legacy")


class StatsClientBase:
    """The metric methods shared by clients and pipelines; subclasses say where a finished line goes.

    >>> pipe = StatsClient("127.0.0.1", 8125, prefix="shop").pipeline()
    >>> pipe.incr("orders", 2); pipe.decr("stock"); pipe.gauge("queue", 3, delta=True)
    >>> pipe.set("visitors", "ann", rate=0.999999999); pipe.timing("render", timedelta(milliseconds=5))
    >>> list(pipe._stats)  # doctest: +NORMALIZE_WHITESPACE
    ['shop.orders:2|c', 'shop.stock:-1|c', 'shop.queue:+3|g', 'shop.visitors:ann|s|@0.999999999',
     'shop.render:5.000000|ms']
    """

    _prefix: str | None = None
    _constant_tags: str = ""

    def _emit(self, line: str) -> None:
        raise NotImplementedError

    def pipeline(self) -> Pipeline:
        """A :class:`Pipeline` collecting lines until ``send()`` (or the end of a ``with`` block)."""
        return Pipeline(self)

    def timer(self, stat: str, rate: float = 1, tags: Tags = None) -> Timer:
        """A :class:`Timer` for ``stat``: decorator, context manager or ``start()``/``stop()``/``send()``."""
        return Timer(self, stat, rate, tags)

    def timing(self, stat: str, delta: float | timedelta, rate: float = 1, tags: Tags = None) -> None:
        """Send a duration: ``delta`` in milliseconds or a ``timedelta``."""
        try:
            if isinstance(delta, timedelta):
                delta = delta.total_seconds() * 1000.0
            value = "%0.6f|ms" % delta  # noqa: UP031 - the original's exact formatting
        except (TypeError, ValueError):
            return self._bad_value("timing", stat, delta)
        self._send_stat(stat, value, rate, tags)

    def incr(self, stat: str, count: float = 1, rate: float = 1, tags: Tags = None) -> None:
        """Add ``count`` to a counter."""
        self._send_stat(stat, f"{count}|c", rate, tags)

    def decr(self, stat: str, count: float = 1, rate: float = 1, tags: Tags = None) -> None:
        """Subtract ``count`` from a counter."""
        try:
            negated = -count
        except TypeError:
            return self._bad_value("decr", stat, count)
        self.incr(stat, negated, rate, tags)

    def gauge(self, stat: str, value: float, rate: float = 1, delta: bool = False, tags: Tags = None) -> None:
        """Set a gauge, or change it by ``value`` with ``delta=True`` (sent as ``+N`` / ``-N``).

        A negative value that is not a delta is sent as ``stat:0|g`` then ``stat:-N|g``, because a leading
        ``-`` alone would be read as a delta.
        """
        try:
            negative = value < 0
        except TypeError:
            return self._bad_value("gauge", stat, value)
        if negative and not delta:
            if rate < 1 and random.random() > rate:
                return None
            with self.pipeline() as pipe:
                pipe._send_stat(stat, "0|g", 1, tags)
                pipe._send_stat(stat, f"{value}|g", 1, tags)
            return None
        sign = "+" if delta and not negative else ""
        self._send_stat(stat, f"{sign}{value}|g", rate, tags)
        return None

    def set(self, stat: str, value: Any, rate: float = 1, tags: Tags = None) -> None:
        """Add ``value`` to a set (statsd_exporter ignores sets; kept for API compatibility)."""
        self._send_stat(stat, f"{value}|s", rate, tags)

    def _send_stat(self, stat: str, value: str, rate: float, tags: Tags) -> None:
        if rate >= 1 and not tags and not self._constant_tags:  # the common case, as _prepare makes it
            self._emit(f"{self._prefix}.{stat}:{value}" if self._prefix else f"{stat}:{value}")
            return
        line = self._prepare(stat, value, rate, tags)
        if line is not None:
            self._emit(line)

    def _prepare(self, stat: str, value: str, rate: float, tags: Tags = None) -> str | None:
        # sampling first, exactly as the original: one random.random() call per sampled metric
        if rate < 1:
            if random.random() > rate:
                return None
            value = f"{value}|@{rate}"
        if self._prefix:
            stat = f"{self._prefix}.{stat}"
        if tags or self._constant_tags:
            try:
                call_tags = tag_field(tags) if tags else ""
            except ValueError as err:  # a reserved tag key: the line is refused, never raised
                log.warning("statsd %r dropped: %s", stat, err)
                return None
            return f"{stat}:{value}{join_tags(call_tags, self._constant_tags)}"
        return f"{stat}:{value}"

    def _bad_value(self, method: str, stat: str, value: object) -> None:
        log.warning("statsd %s(%r) dropped: value %r is not a number", method, stat, value)


class Pipeline(StatsClientBase):
    """Collects lines and sends them together on ``send()`` or at the end of a ``with`` block.

    >>> pipe = StatsClient("127.0.0.1", 8125, prefix="shop").pipeline()
    >>> pipe.incr("orders")
    >>> pipe.gauge("stock", -3)
    >>> list(pipe._stats)
    ['shop.orders:1|c', 'shop.stock:0|g', 'shop.stock:-3|g']
    """

    def __init__(self, client: StatsClientBase) -> None:
        self._client = client
        self._prefix = client._prefix
        self._constant_tags = client._constant_tags
        self._stats: deque[str] = deque()

    def _emit(self, line: str) -> None:
        self._stats.append(line)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.send()

    def send(self) -> None:
        """Hand every collected line, in order, to the client (or the enclosing pipeline)."""
        while self._stats:
            self._client._emit(self._stats.popleft())


class _SendingClient(StatsClientBase):
    """A client that sends: its lines go to a :class:`statsd_instrument.client.Client` it makes at first use
    (batching, fork-safe); a :class:`Pipeline` only collects."""

    _client: Client | None = None
    dropped = 0  # lines that could not be handed to the client (bad line, bad configuration)
    _warned_at = -60.0

    def _init_common(self, prefix: str | None, tags: Tags) -> None:
        self._prefix = prefix
        self._constant_tags = tag_field(tags)
        self._client = None

    def _make_client(self) -> Client:
        raise NotImplementedError

    def _emit(self, line: str) -> None:
        try:
            client = self._client
            if client is None:
                client = self._client = self._make_client()
            client.send_line(line)
        except Exception as exc:  # an app never fails because a metric could not be sent
            self.dropped += 1
            now = time.monotonic()
            if now - self._warned_at >= 60:  # at most one warning a minute per client
                self._warned_at = now
                log.warning("statsd line dropped (%s): %r; %d dropped so far", exc, line, self.dropped)

    def flush(self) -> None:
        """Send what is buffered now (an addition: the original sent every call at once)."""
        if self._client is not None:
            self._client.flush()

    def close(self) -> None:
        """Flush and release the socket; a later call opens a new one."""
        client, self._client = self._client, None
        if client is not None:
            client.flush()
            client.close()


def _resolve(host: str, port: int, ipv6: bool, kind: int) -> tuple[str, int]:
    """(address, port) the original would send to; an unresolvable name is kept for the transport to retry."""
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    try:
        addr = socket.getaddrinfo(host, port, family, kind)[0][4]
    except (OSError, UnicodeError) as exc:
        log.warning("statsd host %r does not resolve (%s); will retry when sending", host, exc)
        return host, int(port)
    return str(addr[0]), int(addr[1])  # an AF_INET/AF_INET6 address: (host, port, ...)


class StatsClient(_SendingClient):
    """UDP client with the ``statsd`` package's API (default ``localhost:8125``, like the original).

    >>> sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    >>> sink.bind(("127.0.0.1", 0))
    >>> statsd = StatsClient("127.0.0.1", sink.getsockname()[1], prefix="shop", tags={"region": "eu"})
    >>> statsd.timing("checkout.GET.200", 12.5, tags=["canary:yes"])
    >>> statsd.flush()
    >>> sink.recv(512)
    b'shop.checkout.GET.200:12.500000|ms|#canary:yes,region:eu'
    >>> statsd.close()
    >>> sink.close()
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = 8125,
        prefix: str | None = None,
        maxudpsize: int = 512,
        ipv6: bool = False,
        *,
        tags: Tags = None,
    ) -> None:
        self._maxudpsize = check_max_datagram_bytes(maxudpsize, "udp", "maxudpsize")
        self._init_common(prefix, tags)
        self._addr = _resolve(host, port, ipv6, socket.SOCK_DGRAM)

    def _make_client(self) -> Client:
        host, port = self._addr
        return Client(host=host, port=port, protocol="udp", max_datagram_bytes=self._maxudpsize)


class TCPStatsClient(_SendingClient):
    """TCP client with the ``statsd`` package's API; ``connect``/``reconnect``/``close`` as the original.

    >>> statsd = TCPStatsClient("127.0.0.1", 9, prefix="shop")
    >>> statsd._prepare("jobs", "1|c", 1)
    'shop.jobs:1|c'
    >>> statsd.close()
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = 8125,
        prefix: str | None = None,
        timeout: float | None = None,
        ipv6: bool = False,
        *,
        tags: Tags = None,
    ) -> None:
        self._init_common(prefix, tags)
        self._host, self._port, self._ipv6 = host, port, ipv6
        self._timeout = timeout

    def _make_client(self) -> Client:
        host, port = _resolve(self._host, self._port, self._ipv6, socket.SOCK_STREAM)
        return Client(host=host, port=port, protocol="tcp", timeout_s=self._timeout)

    def connect(self) -> None:
        """Prepare the connection now instead of at the first metric."""
        if self._client is None:
            self._client = self._make_client()

    def reconnect(self) -> None:
        """Close and connect again."""
        self.close()
        self.connect()


class UnixSocketStatsClient(_SendingClient):
    """Unix socket client with the ``statsd`` package's API; sends datagrams to ``socket_path``.

    >>> statsd = UnixSocketStatsClient("/run/statsd_exporter.sock", prefix="shop")
    >>> statsd._prepare("jobs", "1|c", 1)
    'shop.jobs:1|c'
    >>> statsd.close()
    """

    def __init__(
        self, socket_path: str, prefix: str | None = None, timeout: float | None = None, *, tags: Tags = None
    ) -> None:
        self._init_common(prefix, tags)
        self._socket_path = socket_path
        self._timeout = timeout

    def _make_client(self) -> Client:
        return Client(socket_path=self._socket_path, protocol="unixgram", timeout_s=self._timeout)

    def connect(self) -> None:
        """Prepare the socket now instead of at the first metric."""
        if self._client is None:
            self._client = self._make_client()

    def reconnect(self) -> None:
        """Close and connect again."""
        self.close()
        self.connect()
