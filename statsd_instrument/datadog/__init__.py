"""Drop-in for datadog's statsd client: ``from datadog import initialize, statsd`` becomes
``from statsd_instrument.datadog import initialize, statsd`` and nothing else changes.

:class:`DogStatsd` takes every constructor keyword of datadog 0.44 to 0.56 and :func:`initialize` every
option name; the ones that mean something for a statsd_exporter backend are honoured, the rest are accepted
and do nothing (the table below). The documented attributes (``host``, ``port``, ``socket_path``,
``namespace``, ``constant_tags``, ``default_sample_rate``, ``use_ms``, ``max_buffer_len``, ...) read back
what is in use, and a write takes effect on the next call. The environment is read as datadog reads it:
``DD_DOGSTATSD_URL`` (``udp://``, ``unix://``, ``unixgram://``; ``unixstream://`` sends datagrams with a
start-up warning) only when no address was given, ``DD_AGENT_HOST`` / ``DD_DOGSTATSD_PORT`` field by field,
``DATADOG_TAGS`` (or ``DD_TAGS``) and ``DD_ENV`` / ``DD_SERVICE`` / ``DD_VERSION`` as constant tags,
``DD_DOGSTATSD_DISABLE`` to send nothing. A bad value is reported where it is read (import, constructor,
``initialize()``, an attribute write): strict mode raises, production logs one line and sends nothing.

What is different, on purpose (docs/migrating.md has the full table with reasons): ``timed`` sends float
milliseconds whatever ``use_ms`` says (datadog sends seconds typed ``ms``, which statsd_exporter would divide
again); lines are batched per process and flushed at the end of a request, at an interval and at exit. The
default address is datadog's port on 127.0.0.1 (8125): run statsd_exporter with ``--statsd.listen-udp=:8125``
or set ``DD_DOGSTATSD_PORT=9125``.

Honoured: host, port, socket_path, namespace, constant_tags, default_sample_rate, use_ms (unit of
``elapsed`` and of ``distributed``), use_default_route, max_buffer_len (bytes per datagram), flush_interval,
disable_telemetry (no ``statsd_instrument_client_dropped`` report).
Accepted, meaningless here: max_buffer_size, disable_buffering, disable_aggregation (disable_aggregating),
max_metric_samples_per_context, the telemetry_* options, container_id,
origin_detection_enabled, cardinality, socket_timeout, socket_connect_timeout, socket_connect_retry,
disable_background_sender, sender_queue_*, track_instance.

>>> client = DogStatsd(namespace="shop", constant_tags=["region:eu"], default_sample_rate=1)
>>> with client.capture_lines() as lines:
...     client.increment("orders", tags=["status:paid"])
...     client.constant_tags.append("canary:no")
...     client.increment("orders")
>>> lines
['shop.orders:1|c|#region:eu,status:paid', 'shop.orders:1|c|#region:eu,canary:no']
>>> client.close()
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import struct
from typing import Any, Iterable

from statsd_instrument import validation
from statsd_instrument.client import Client, reported, settings_or_disabled
from statsd_instrument.config import DATADOG_PORT, DEFAULT_HOST, ConfigError, datadog_env_tags, strict_default

__all__ = ["DogStatsd", "initialize", "statsd"]

log = logging.getLogger("statsd_instrument")
#: datadog's default buffering flush interval (seconds); ours is clamped to what the transport accepts
DEFAULT_FLUSH_INTERVAL = 0.3


def default_route() -> str:
    """The IPv4 gateway of the default route (datadog's ``use_default_route``, Linux only).

    >>> isinstance(default_route(), str)
    True
    """
    try:
        with open("/proc/net/route") as routes:
            for line in routes:
                fields = line.split()
                if len(fields) > 2 and fields[1] == "00000000":
                    return socket.inet_ntoa(struct.pack("<L", int(fields[2], 16)))
    except OSError as err:
        raise ConfigError(f"use_default_route=True: cannot read /proc/net/route ({err})") from None
    raise ConfigError("use_default_route=True: /proc/net/route has no default route")


class TagList(list):
    """datadog's ``constant_tags``: a list whose changes (``append``, ``+=``, ``remove`` ...) apply to the
    client's next line."""

    def __init__(self, tags: Iterable[str] = (), on_change: Any = None) -> None:
        super().__init__(tags)
        self._on_change = on_change

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()


def _notifying(name: str) -> Any:
    method = getattr(list, name)

    def changed(self: TagList, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        self._changed()
        return self if name in ("__iadd__", "__imul__") else result

    changed.__name__ = name
    return changed


for _name in (
    "__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend", "insert", "remove", "pop",
    "clear", "sort", "reverse",
):  # fmt: skip
    setattr(TagList, _name, _notifying(_name))


def _reconfiguring(name: str, doc: str) -> Any:
    """A property of :class:`DogStatsd` whose write applies to the next line."""
    private = "_" + name

    def get(self: DogStatsd) -> Any:
        return getattr(self, private)

    def set_(self: DogStatsd, value: Any) -> None:
        setattr(self, private, value)
        self._reconfigure()

    return property(get, set_, doc=doc)


class DogStatsd(Client):
    """datadog's ``DogStatsd`` on this client: same constructor (keywords of datadog 0.44-0.56, the same
    positional order as the current one), same methods, readable and writable attributes.

    >>> c = DogStatsd(namespace="web", use_ms=True, disable_telemetry=True)
    >>> (c.host, c.port, c.socket_path, c.namespace)
    ('127.0.0.1', 8125, None, 'web')
    >>> c.namespace = "api"
    >>> with c.capture_lines() as lines:
    ...     c.gauge("workers", 5)
    >>> lines
    ['api.workers:5|g']
    >>> c.close()
    """

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        max_buffer_size: int | None = None,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        disable_aggregation: bool = True,
        disable_buffering: bool = True,
        namespace: str | None = None,
        constant_tags: list | None = None,
        use_ms: bool = False,
        use_default_route: bool = False,
        socket_path: str | None = None,
        default_sample_rate: float = 1,
        disable_telemetry: bool = False,
        telemetry_min_flush_interval: int = 10,
        telemetry_host: str | None = None,
        telemetry_port: Any = None,
        telemetry_socket_path: str | None = None,
        max_buffer_len: int = 0,
        max_metric_samples_per_context: int = 0,
        container_id: str | None = None,
        origin_detection_enabled: bool = True,
        cardinality: str | None = None,
        socket_timeout: float | None = 0,
        telemetry_socket_timeout: float | None = 0,
        disable_background_sender: bool = True,
        sender_queue_size: int = 0,
        sender_queue_timeout: float | None = 0,
        sender_queue_expiry_seconds: float = 10.0,
        track_instance: bool = True,
        socket_connect_retry: bool = False,
        *,
        disable_aggregating: bool | None = None,
        socket_connect_timeout: float | None = None,
        strict: bool | None = None,
    ) -> None:
        self._ready = False
        self._strict_arg = strict
        self.use_ms = use_ms
        self.disable_buffering = disable_buffering
        self.cardinality = cardinality
        self.socket_timeout = socket_timeout
        self.encoding = "utf-8"
        self._default_sample_rate = default_sample_rate
        self._flush_interval = flush_interval
        self._telemetry = not disable_telemetry
        self._max_buffer_len = max_buffer_len
        self._namespace = None if namespace is None else str(namespace)
        self._constant_tags = TagList([*(constant_tags or ()), *datadog_env_tags()], self._reconfigure)
        route_error = None
        if use_default_route and socket_path is None:
            try:
                host = default_route()
            except ConfigError as err:
                route_error = err
        Client.__init__(self, host=host, port=port, socket_path=socket_path, **self._common())
        if route_error is not None:
            self._install(reported(route_error, strict_default(strict)))
        settings = self._settings
        if settings.protocol == "null":  # a configuration error (already reported): keep what was given
            self._host, self._port, self._socket_path = host, port, socket_path
        elif settings.protocol == "unixgram":
            self._host, self._port, self._socket_path = None, None, settings.socket_path
        else:
            self._host, self._port, self._socket_path = settings.host, settings.port, None
        self._ready = True

    # -- settings from the attributes --------------------------------------------------------------------

    def _common(self) -> dict:
        interval = self._flush_interval
        if isinstance(interval, (int, float)) and not isinstance(interval, bool):
            interval = min(
                max(float(interval), 0.01), 60.0
            )  # datadog allows 0.0001 s; we flush from a thread
        return dict(
            default_port=DATADOG_PORT,
            prefix=self._namespace or "",
            constant_tags=self._sent_constant_tags(),
            max_datagram_bytes=self._max_buffer_len or None,
            flush_interval_s=interval,
            strict=self._strict_arg,
            # disable_telemetry=True: no report of what the client drops either (docs/client.md)
            **({} if self._telemetry else {"telemetry_interval_s": 0}),
        )

    def _sent_constant_tags(self) -> list:
        """The constant tags as the tag rules send them. As datadog, a bare tag or an empty value is accepted
        (``constant_tags=["canary"]``, ``DATADOG_TAGS=team:web,canary``): it is left out (the exporter would
        only count a tag error), with a warning in strict mode and a log line once otherwise, and never
        costs the client; what the rules refuse (``le``, ``__*``) stays a configuration error."""
        given = list(self._constant_tags)
        try:
            pairs, drops = validation.tag_pairs(given)
        except ValueError:
            return given  # refused: the settings report it, naming the tags
        if drops:
            policy = validation.TagPolicy(strict_default(self._strict_arg))
            policy.dropped(drops, given)
            if not policy.strict and tuple(given) not in _told_dropped_constant:
                _told_dropped_constant.add(tuple(given))
                log.warning("statsd_instrument: constant tags %r: %s not sent", given, ", ".join(drops))
        return [f"{key}:{value}" for key, value in pairs.items()]

    def _reconfigure(self) -> None:
        """Apply the attributes now (lines buffered before leave first); a bad value is reported here."""
        if not getattr(self, "_ready", False):
            return
        if self._socket_path is not None:
            address: dict = dict(socket_path=self._socket_path, protocol="unixgram")
        else:
            address = dict(host=self._host or DEFAULT_HOST, port=self._port or DATADOG_PORT, protocol="udp")
        settings = settings_or_disabled({**address, **self._common()})
        same_transport = dataclasses.replace(
            self._settings, prefix=settings.prefix, constant_tags=settings.constant_tags
        )
        if settings == same_transport:  # only what lines look like changed: keep the socket (and a capture)
            self._restyle(settings)
            self._sample_by_default()
        else:
            self._install(settings)

    def _install(self, settings: Any) -> None:
        super()._install(settings)
        self._sample_by_default()

    def _sample_by_default(self) -> None:
        if self._default_sample_rate != 1:
            self._emit = self._emit_default_rate  # type: ignore[method-assign]
        elif self._emit == self._emit_default_rate:
            self._emit = self._emit_line  # type: ignore[method-assign]

    def _emit_default_rate(self, metric: Any, text: Any, kind: str, tags: Any, rate: Any) -> None:
        self._emit_line(metric, text, kind, tags, self._default_sample_rate if rate is None else rate)

    host = _reconfiguring("host", "Where UDP lines go (None while ``socket_path`` is set).")
    port = _reconfiguring("port", "The UDP port (None while ``socket_path`` is set).")
    socket_path = _reconfiguring("socket_path", "A unix datagram socket path; it wins over host and port.")
    namespace = _reconfiguring("namespace", "Prefix of every metric name (``namespace.metric``), or None.")
    default_sample_rate = _reconfiguring("default_sample_rate", "Sample rate of calls that give none.")
    max_buffer_len = _reconfiguring("max_buffer_len", "Bytes per datagram (0: 1432 for UDP, 8192 unix).")

    @property
    def constant_tags(self) -> TagList:
        """Tags added to every line (``constant_tags`` + ``DATADOG_TAGS``/``DD_TAGS`` + ``DD_ENV``...);
        ``append``/``+=`` and assignment apply to the next line."""
        return self._constant_tags

    @constant_tags.setter
    def constant_tags(self, tags: Iterable[str] | None) -> None:
        self._constant_tags = TagList(tags or (), self._reconfigure)
        self._reconfigure()

    @staticmethod
    def resolve_host(host: str | None, use_default_route: bool) -> str | None:
        """``host``, or the default route's gateway with ``use_default_route`` (datadog's helper)."""
        return default_route() if use_default_route else host


_told_dropped_constant: set = set()
_IGNORED_DEFAULTS = {
    "api_key": None,
    "app_key": None,
    "host_name": None,
    "api_host": None,
    "statsd_disable_aggregation": True,
    "statsd_aggregation_flush_interval": 0.3,
    "statsd_max_samples_per_context": 0,
    "return_raw_response": False,
    "hostname_from_config": True,
}
_told_ignored: set = set()


def initialize(
    api_key: str | None = None,
    app_key: str | None = None,
    host_name: str | None = None,
    api_host: str | None = None,
    statsd_host: str | None = None,
    statsd_port: int | None = None,
    statsd_disable_aggregation: bool = True,
    statsd_disable_buffering: bool = True,
    statsd_aggregation_flush_interval: float = 0.3,
    statsd_use_default_route: bool = False,
    statsd_socket_path: str | None = None,
    statsd_namespace: str | None = None,
    statsd_max_samples_per_context: int = 0,
    statsd_constant_tags: list | None = None,
    return_raw_response: bool = False,
    hostname_from_config: bool = True,
    cardinality: str | None = None,
    **kwargs: Any,
) -> None:
    """Configure the module-level :data:`statsd` with datadog's option names, as ``datadog.initialize``
    does: a socket path wins over host and port; host/port replace a socket path; the namespace is
    replaced and the constant tags are added to. Options for Datadog's HTTP API (``api_key``,
    ``app_key``, ``api_host``, ``host_name``, ``proxies``, ``mute``, ...) and for datadog's client-side
    aggregation are accepted and ignored, logged once per process.

    >>> initialize(statsd_host="127.0.0.1", statsd_port=9125, statsd_namespace="shop")
    >>> statsd.host, statsd.port, statsd.namespace
    ('127.0.0.1', 9125, 'shop')
    >>> initialize(statsd_namespace=None); statsd.namespace  # as datadog: an empty option changes nothing
    'shop'
    >>> statsd.namespace = None
    """
    given = dict(locals())
    ignored = sorted(
        [name for name, default in _IGNORED_DEFAULTS.items() if given[name] != default] + list(kwargs)
    )
    if ignored and tuple(ignored) not in _told_ignored:
        _told_ignored.add(tuple(ignored))
        log.warning(
            "statsd_instrument.datadog.initialize: %s accepted and ignored (no Datadog API or client-side "
            "aggregation with statsd_exporter)",
            ", ".join(ignored),
        )
    client = statsd
    client._ready = False  # one reconfiguration for all the options below
    try:
        if statsd_socket_path:
            client.socket_path, client.host, client.port = statsd_socket_path, None, None
        elif statsd_host or statsd_use_default_route or statsd_port:
            if statsd_host or statsd_use_default_route:
                client.host = client.resolve_host(statsd_host, statsd_use_default_route)
            if statsd_port:
                client.port = int(statsd_port)
            client.socket_path = None
        if statsd_namespace:
            client.namespace = str(statsd_namespace)
        if statsd_constant_tags:
            client._constant_tags = TagList(
                [*client._constant_tags, *statsd_constant_tags], client._reconfigure
            )
        client.disable_buffering = statsd_disable_buffering
        client.cardinality = cardinality
    except ConfigError as err:  # only use_default_route without a default route
        client._ready = True
        client._install(reported(err, strict_default(client._strict_arg)))
        return
    client._ready = True
    client._reconfigure()


#: The module-level client, configured from the environment at import (as datadog's ``statsd``).
statsd = DogStatsd()
