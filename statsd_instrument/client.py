"""The metric calls, with datadog's ``DogStatsd`` signatures, and the module-level ``statsd`` client.

``from datadog import statsd`` can become ``from statsd_instrument import statsd``. Differences, on purpose:

* ``timing`` takes milliseconds and sends them as float ms with microsecond precision (``12.345|ms``);
  ``timed`` measures with ``time.perf_counter()`` (``use_ms`` is accepted and ignored: always ms).
* ``gauge(name, -5)`` *sets* -5: it sends ``name:0|g`` then ``name:-5|g`` in one datagram, because
  statsd_exporter reads a leading sign as a delta. ``gauge(name, 2, delta=True)`` sends ``+2`` (a delta).
* ``set`` is refused: statsd_exporter has no sets.
* ``gauge_with_timestamp``/``count_with_timestamp`` send no ``|T`` field, ``distributed`` sends seconds as
  ``|d``, ``event``/``service_check`` are accepted and not sent, ``cardinality=`` is ignored: see
  :mod:`statsd_instrument.dogstatsd_compat`.
* Tags follow :mod:`statsd_instrument.validation`: keys are escaped to the label name statsd_exporter would
  make of them (``availability-zone`` -> ``availability_zone``); a bare tag, an empty value or an empty key
  is not sent, the metric is, and ``stats["dropped_tags"]`` counts it (strict mode also warns).
* Bad names, reserved tag keys and non-numbers are programming errors: **strict** mode (default under pytest
  and ``python -X dev``, or ``STATSD_STRICT=1``) raises ``ValueError`` naming the metric and the problem;
  production mode drops the call, counts it in ``stats.invalid_calls`` and logs one warning per metric.
  A metric call never raises for any other reason.

>>> c = Client(protocol="null", prefix="shop", constant_tags=["env:dev"])
>>> with c.capture_lines() as lines:
...     c.increment("orders_total", tags={"status": "paid"})
...     c.timing("db_query_seconds", 12.3456)
...     c.gauge("temperature", -5)
>>> for line in lines:
...     print(line)
shop.orders_total:1|c|#env:dev,status:paid
shop.db_query_seconds:12.346|ms|#env:dev
shop.temperature:0|g|#env:dev
shop.temperature:-5|g|#env:dev
>>> c.close()
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import random
import weakref
from typing import Any, Callable, Iterator, List, Mapping

from statsd_instrument import guard, validation, wire
from statsd_instrument.config import ConfigError, Settings, TagsArg, load_settings, strict_default
from statsd_instrument.dogstatsd_compat import DogStatsdCompat
from statsd_instrument.measure import Timed
from statsd_instrument.transport import BufferedTransport, CaptureTransport, ClientStats
from statsd_instrument.validation import TagPolicy, Tags

log = logging.getLogger("statsd_instrument")
_random = random.random
_MAX_WARNED = 1000


class Client(DogStatsdCompat):
    """A buffered, fork-safe DogStatsD client (see the module docstring for semantics).

    Arguments left as None come from the environment (``STATSD_*``, then ``DD_*``) or defaults (other
    keywords of :func:`~statsd_instrument.config.load_settings`, such as ``timeout_s``, are passed on); a bad
    value raises :class:`~statsd_instrument.config.ConfigError` here in strict mode, and otherwise is logged
    once and the client sends nothing (:func:`settings_or_disabled`); a metric call never raises for it.

    >>> c = Client(protocol="null")
    >>> c.increment("jobs_total", tags=["queue:default"]); c.flush()
    >>> c.stats["sent_lines"], c.dropped
    (1, 0)
    >>> c.close()
    """

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        socket_path: str | None = None,
        prefix: str | None = None,
        constant_tags: TagsArg = None,
        *,
        protocol: str | None = None,
        max_datagram_bytes: int | None = None,
        flush_interval_s: float | None = None,
        strict: bool | None = None,
        multi_value: bool | None = None,
        **settings: Any,
    ) -> None:
        self._pending: dict | None = None
        self._transport: Any = None
        self.settings_generation = 0
        self._start_providers: list = []
        self._series_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._install(
            settings_or_disabled(
                dict(
                    host=host,
                    port=port,
                    socket_path=socket_path,
                    prefix=prefix,
                    constant_tags=constant_tags,
                    protocol=protocol,
                    max_datagram_bytes=max_datagram_bytes,
                    flush_interval_s=flush_interval_s,
                    strict=strict,
                    multi_value=multi_value,
                    **settings,
                )
            )
        )

    @classmethod
    def deferred(cls, **kwargs: Any) -> Client:
        """A client that reads its settings (and the environment) on first use, not now.

        >>> c = Client.deferred(protocol="null")
        >>> c.settings.protocol
        'null'
        >>> c.close()
        """
        client = cls.__new__(cls)
        client._pending = kwargs
        client._transport = None
        client._series_caches = weakref.WeakKeyDictionary()
        client.settings_generation = 0
        client._new_generation()  # the call caches, empty
        client._start_providers = []
        client._emit = client._emit_first  # type: ignore[method-assign]
        return client

    # -- configuration -------------------------------------------------------------------------------------

    def _install(self, settings: Settings) -> None:
        old = self._transport
        self._restyle(settings)
        self._warned: set = set()
        self._buffered = BufferedTransport(settings)
        self._buffered.telemetry_tags = self._telemetry_tags()
        self._buffered.start_lines = self._start_lines
        self._route(self._buffered, settings.strict)
        self._pending = None
        self._emit = self._emit_line  # type: ignore[method-assign]
        if old is not None:
            old.close()

    def _telemetry_tags(self) -> str:
        """The tags of this client's telemetry lines: the constant tags, with a ``service``."""
        tags = self._settings.constant_tags
        if any(tag.startswith("service:") for tag in tags):
            return validation.format_tags(None, _UNCOUNTED, tags)
        service = {"service": getattr(self, "_service", None) or "unknown"}
        return validation.format_tags(service, _UNCOUNTED, tags)

    def note_service(self, service: str) -> None:
        """Name the service whose telemetry this client pushes (integrations call it with theirs), unless
        a constant ``service`` tag names it already.

        >>> c = Client(protocol="null"); c.note_service("shop"); c._buffered.telemetry_tags
        '|#service:shop'
        >>> c.close()
        """
        self._service = service
        if self._pending is None:
            self._buffered.telemetry_tags = self._telemetry_tags()

    def _restyle(self, settings: Settings) -> None:
        """Take ``settings`` for what lines look like (prefix, constant tags), keeping the transport (and a
        capture in progress); :meth:`_install` also replaces the transport. Prepared lines made before are
        stale."""
        self._settings = settings
        self._prefix = settings.prefix + "." if settings.prefix else ""
        self._tag_policy = _ClientTagPolicy(self)
        self._constant_suffix = validation.format_tags(None, self._tag_policy, settings.constant_tags)
        # checked names per metric kind: a name passes the guard rails once per type (statsd_instrument.guard)
        self._names: dict = {kind: {} for kind in guard.EVENT_TYPES}
        # one record per exporter this process sends to (a null client sends nowhere: its own record)
        if settings.protocol == "null":
            self._sent = guard.SentSeries()
        else:
            self._sent = SENT_IN_PROCESS.setdefault(settings.address(), guard.SentSeries())
        self._tag_cache: dict = {}
        self._new_generation()
        if getattr(self, "_buffered", None) is not None:  # constant tags may have changed
            self._buffered.telemetry_tags = self._telemetry_tags()

    def _route(self, transport: Any, strict: bool) -> None:
        """Send through ``transport`` with ``strict`` from now on; prepared lines made before are stale."""
        self._transport = transport
        self._add = transport.add
        self._count = transport.count
        self._sample = transport.sample
        self._add_flush = transport.add_flush
        self._add_request = transport.add_request
        self._gauge = transport.gauge
        #: for the request recorder: the transport's per-series lists of request durations and the call that
        #: appends to an empty one (:meth:`~statsd_instrument.transport.BufferedTransport.samples`,
        #: :meth:`~statsd_instrument.transport.BufferedTransport.append_first`); None: no such lists (capture
        #: mode, a disabled client)
        buffered = isinstance(transport, BufferedTransport)
        self.samples = transport.samples if buffered else None
        self.append_first = transport.append_first if buffered else None
        # counter increments go to the transport's lock-free tallies (BufferedTransport.tally); increment()'s
        # cache holds them, so it starts afresh with each transport
        self._tally = transport.tally if buffered else None
        self._gauge_list = transport.gauges if buffered else None  # and gauge changes to their lists
        self._here = transport.here if buffered else None
        if self._settings.disabled and isinstance(transport, BufferedTransport):
            # DD_DOGSTATSD_DISABLE or a configuration error: every line is counted as dropped, none sent
            self._add = self._add_flush = self._drop_lines
            self._count = self._sample = self._gauge = self._drop_call
            self._add_request = self._drop_request
            self.samples = None
            self._tally = self._gauge_list = None
        self._strict = strict
        self._new_generation()

    def _new_generation(self) -> None:
        """Whatever was prepared or cached for the settings, transport and capture mode so far is stale: a
        new ``settings_generation``, and every series cache emptied (:meth:`series_cache`)."""
        # metric -> {tuple(tags list): the transport's tally of the series} (increment()), and the same for
        # the sample lists of timings (float ms), histograms and distributions: _counted entries in all
        self._counters: dict = {}
        self._timings: dict = {}
        self._histograms: dict = {}
        self._distributions: dict = {}
        self._gauges: dict = {}  # and the lists of gauge changes (gauge())
        self._sample_caches = {"ms": self._timings, "h": self._histograms, "d": self._distributions}
        self._counted = 0
        self.settings_generation += 1
        for cache in list(self._series_caches.values()):
            cache.clear()

    def series_cache(self, owner: object) -> dict:
        """A dict this client empties whenever its ``settings_generation`` changes (settings, transport,
        capture mode), kept while ``owner`` lives: for callers that cache what is valid for one generation
        (the series lists of :meth:`PreparedMetric.counter`, ``samples`` and ``gauge``) and compare
        no generation per call (declared metrics, :mod:`statsd_instrument.metrics`).

        >>> c = Client(protocol="null"); cache = c.series_cache(c); cache["k"] = 1
        >>> c.configure(protocol="null"); cache
        {}
        >>> c.close()
        """
        cache: dict = {}
        self._series_caches[owner] = cache
        return cache

    def _drop_lines(self, lines: str) -> None:
        self._transport.stats.dropped_lines += lines.count("\n") + 1

    def _drop_call(self, key: Any, value: Any, *sampled: str) -> None:
        self._transport.stats.dropped_lines += 1

    def _drop_request(self, count_key: Any, sample_key: Any, text: str, line: bytes | None) -> None:
        self._transport.stats.dropped_lines += 2 if line is None else 3

    def _ensure(self) -> None:
        if self._pending is not None:
            self._install(settings_or_disabled(self._pending))

    def _emit_first(self, metric: Any, text: Any, kind: str, tags: Tags, rate: Any) -> None:
        self._ensure()
        self._emit(metric, text, kind, tags, rate)

    def configure(self, **kwargs: Any) -> None:
        """Replace the settings (same keywords as :class:`Client`); what was buffered is sent first.

        >>> c = Client(protocol="null")
        >>> c.configure(protocol="null", prefix="billing"); c.settings.prefix
        'billing'
        >>> c.close()
        """
        self._install(settings_or_disabled(kwargs))

    #: Bumped whenever what a line looks like or where it goes changes (settings, prefix, constant tags,
    #: transport, capture mode): a :class:`PreparedMetric` made under another generation rebuilds itself.
    settings_generation: int

    @property
    def settings(self) -> Settings:
        """The settings in use (read from the environment on first access for a deferred client)."""
        if self._pending is not None:
            self._ensure()
        return self._settings

    # -- building lines --------------------------------------------------------------------------------------

    def _name(self, metric: Any, kind: str) -> str:
        names = self._names[kind]
        name = names.get(metric)
        if name is None:
            name = self._prefix + validation.check_name(metric)
            guard.check_series(name, kind, self._sent)
            if len(names) < validation.MAX_CACHE:
                names[metric] = name
        return name

    def _tags(self, tags: Tags) -> str:
        if not tags:
            return self._constant_suffix
        kind = type(tags)
        try:
            if kind is list or kind is tuple:
                key: Any = tuple(tags)
            elif kind is dict or isinstance(tags, Mapping):
                key = tuple(tags.items())  # type: ignore[union-attr]
            else:
                key = None
            suffix = self._tag_cache.get(key) if key is not None else None
        except TypeError:  # unhashable values: format without the cache
            key = suffix = None
        if suffix is None:
            counted = self._tag_policy.dropped_count
            suffix = validation.format_tags(tags, self._tag_policy, self._settings.constant_tags)
            # cache only all-str values (1, 1.0 and True are equal keys but print differently) and only tags
            # of which none was left out (each call must count that)
            suffix.encode()  # a lone surrogate cannot be sent: refused here, never when the buffer leaves
            values = tags.values() if isinstance(tags, Mapping) else tags
            if (
                key is not None
                and counted == self._tag_policy.dropped_count
                and all(type(v) is str for v in values)
            ):
                if len(self._tag_cache) >= validation.MAX_CACHE:
                    self._tag_cache.clear()
                self._tag_cache[key] = suffix
        return suffix

    def _emit_line(self, metric: Any, text: Any, kind: str, tags: Tags, rate: Any) -> None:
        """Build ``metric:text|kind...`` and buffer it; ``text`` is already formatted unless kind is c."""
        try:
            name = self._names[kind].get(metric) or self._name(metric, kind)
            if kind == "c" and type(text) is not int:
                text = wire.format_number(text)
            # the common cases inline: a list or dict of str tags seen before (cached suffix)
            rest = None
            try:
                if tags.__class__ is list:
                    rest = self._tag_cache.get(tuple(tags))
                elif tags.__class__ is dict:
                    rest = self._tag_cache.get(tuple(tags.items()))
            except TypeError:  # unhashable values: formatted below without the cache
                pass
            rest_cached = rest is not None  # tags seen before, none left out (those are counted per call)
            if rest is None:
                rest = self._tags(tags)
            # no tags, or a list or dict of them seen before: the call finds the series' lock-free list next
            # time (BufferedTransport.gauges, .tally, .samples), while the caches have room
            cacheable = (
                tags is None or (tags.__class__ in _LIST_OR_DICT and rest_cached)
            ) and self._counted < validation.MAX_CACHE
            if kind == "g":  # text is a change: a delta (a number) or a set (a 1-tuple), merged in the window
                series = (name, kind, rest)
                if rate is not None and rate != 1:
                    sampled = wire.sample_rate_suffix(rate)  # raises for a bad rate
                    if _random() < rate:  # kept: merged all the same (the exporter ignores a gauge's rate)
                        self._gauge(series, text, sampled)
                    return
                if cacheable and self._gauge_list is not None:
                    self._remember_list(self._gauges, metric, tags, self._gauge_list(series))
                self._gauge(series, text)
                return
            if rate is not None and rate != 1:
                rest = wire.sample_rate_suffix(rate) + rest
                if _random() >= rate:
                    return
            elif kind in _MERGED:  # merged within the flush window (see transport)
                series = (name, kind, rest)
                cached = cacheable and self._tally is not None
                if kind != "c":
                    if cached:
                        values = self.samples(None, series, 1.0 if kind == "ms" else None)  # type: ignore[misc]
                        self._remember_list(self._sample_caches[kind], metric, tags, values)
                    self._sample(series, text)
                    return
                if type(text) is int and text >= 0:
                    if cached:
                        self._remember_list(self._counters, metric, tags, self._tally(series))  # type: ignore[misc]
                    self._count(series, text)
                    return
            self._add(f"{name}:{text}|{kind}{rest}")
        except Exception as err:
            self._invalid(metric, kind, err)

    _emit = _emit_line

    def _remember_list(self, cache: dict, metric: Any, tags: Tags, values: list | None) -> None:
        if values is not None:
            cache.setdefault(metric, {})[_tags_key(tags)] = values
            self._counted += 1

    def _invalid(self, metric: Any, kind: str, err: Exception) -> None:
        """A bad call: raise in strict mode; otherwise drop it, count it and warn once per metric."""
        if self._strict:
            raise ValueError(
                f"statsd_instrument: bad {_KINDS.get(kind, kind)} call for {metric!r}: {err}"
            ) from err
        stats = self._transport.stats
        stats.invalid_calls += 1
        reason = getattr(err, "reason", "invalid_call")
        stats.invalid_reasons[reason] = stats.invalid_reasons.get(reason, 0) + 1
        self._buffered.telemetry_due()  # a process that only drops still reports it
        key = (metric if isinstance(metric, str) else repr(metric), kind)
        if key not in self._warned and len(self._warned) < _MAX_WARNED:
            self._warned.add(key)
            log.warning(
                "statsd_instrument: dropped bad %s call for %r: %s", _KINDS.get(kind, kind), metric, err
            )

    def _formatted(self, metric: Any, kind: str, fmt: Any, value: Any, tags: Tags, rate: Any) -> None:
        try:
            text = fmt(value)
        except Exception as err:
            self._ensure()
            self._invalid(metric, kind, err)
            return
        self._emit(metric, text, kind, tags, rate)

    # -- the DogStatsd calls ---------------------------------------------------------------------------------

    def increment(
        self,
        metric: str,
        value: float = 1,
        tags: Tags = None,
        sample_rate: float | None = None,
        cardinality: str | None = None,
    ) -> None:
        """Add ``value`` (default 1) to a counter.

        >>> with statsd.capture_lines() as lines:
        ...     statsd.increment("orders_total", tags=["status:paid"])
        >>> lines
        ['orders_total:1|c|#status:paid']
        """
        # the common case inline: no tags, or tags as a list (a new one per call, as code writes them) or a
        # dict seen before
        if (
            sample_rate is None
            and value.__class__ is int
            and value >= 0
            and (tags is None or tags.__class__ is list or tags.__class__ is dict)
        ):
            try:
                by_tags = self._counters.get(metric)
                if by_tags is None:
                    tally = None
                else:  # by _tags_key(tags), written out
                    tally = by_tags.get(
                        () if tags is None else tuple(tags) if tags.__class__ is list else tuple(tags.items())  # type: ignore[union-attr]
                    )
            except TypeError:  # unhashable name or tags: the general path says what is wrong
                tally = None
            if tally is not None:  # the series' tally: appended to without a lock (BufferedTransport.tally)
                if tally and self._here[0]:  # type: ignore[index]  # not None: tallies exist only when buffered
                    tally.append(value)
                else:
                    self.append_first(tally, value)  # type: ignore[misc]  # not None either
                return
        self._emit(metric, value, "c", tags, sample_rate)

    count = increment

    def decrement(
        self,
        metric: str,
        value: float = 1,
        tags: Tags = None,
        sample_rate: float | None = None,
        cardinality: str | None = None,
    ) -> None:
        """Subtract ``value`` (default 1) from a counter.

        >>> with statsd.capture_lines() as lines:
        ...     statsd.decrement("slots", 2)
        >>> lines
        ['slots:-2|c']
        """
        self._emit(metric, -value if type(value) in (int, float) else value, "c", tags, sample_rate)

    def gauge(
        self,
        metric: str,
        value: float,
        tags: Tags = None,
        sample_rate: float | None = None,
        cardinality: str | None = None,
        *,
        delta: bool = False,
    ) -> None:
        """Set a gauge to ``value``; with ``delta=True`` add ``value`` to it instead (``+N`` / ``-N``).

        A negative value that must be *set* goes as ``name:0|g`` then ``name:-N|g`` in the same datagram.
        Within the flush window a series' sets and deltas merge (the last set, then the sum of the deltas
        after it: see :mod:`~statsd_instrument.transport`).

        >>> with statsd.capture_lines() as lines:
        ...     statsd.gauge("queue_depth", 7)
        ...     statsd.gauge("in_flight", -1, delta=True)
        >>> lines
        ['queue_depth:7|g', 'in_flight:-1|g']
        """
        # the common case inline, as in increment() (through _appended it costs 0.1-0.15 µs more): an int or a
        # finite float, no tags or a list or dict of them seen before: one append to the series' list of
        # changes (BufferedTransport.gauges: a delta as is, a set as a 1-tuple), no lock
        if (
            sample_rate is None
            and (value.__class__ is int or (value.__class__ is float and -1e300 < value < 1e300))
            and (tags is None or tags.__class__ is list or tags.__class__ is dict)
        ):
            try:
                by_tags = self._gauges.get(metric)
                if by_tags is None:
                    changes = None
                else:  # by _tags_key(tags), written out
                    changes = by_tags.get(
                        () if tags is None else tuple(tags) if tags.__class__ is list else tuple(tags.items())  # type: ignore[union-attr]
                    )
            except TypeError:  # unhashable name or tags: the general path says what is wrong
                changes = None
            if changes is not None:
                if changes and self._here[0]:  # type: ignore[index]  # not None: lists exist only when buffered
                    changes.append(value if delta else (value,))
                else:
                    self.append_first(changes, value if delta else (value,))  # type: ignore[misc]  # not None
                return
        try:
            number = _gauge_number(value)
        except ValueError as err:
            self._ensure()
            self._invalid(metric, "g", err)
            return
        self._emit(metric, number if delta else (number,), "g", tags, sample_rate)

    def timing(
        self,
        metric: str,
        value: float,
        tags: Tags = None,
        sample_rate: float | None = None,
        cardinality: str | None = None,
    ) -> None:
        """Record a duration of ``value`` **milliseconds** (statsd_exporter exports seconds).

        >>> with statsd.capture_lines() as lines:
        ...     statsd.timing("db_query_seconds", 12.5)
        >>> lines
        ['db_query_seconds:12.5|ms']
        """
        # the common case: a finite, non-negative float, no tags or a list or dict of them seen before: one
        # append to the series' list of ms (BufferedTransport.samples), no lock
        if (
            sample_rate is None
            and value.__class__ is float
            and 0.0 <= value < 1e300
            and (tags is None or tags.__class__ is list or tags.__class__ is dict)
            and self._appended(self._timings, metric, value, tags)
        ):
            return
        self._formatted(metric, "ms", wire.format_ms, value, tags, sample_rate)

    def _appended(self, by_metric: dict, metric: Any, value: float, tags: Any) -> bool:
        """Append ``value`` to the lock-free list of the series of ``metric`` and ``tags`` (none, or a list or
        dict seen before) in ``by_metric`` if it has one, as increment() does inline: whether it did."""
        try:
            by_tags = by_metric.get(metric)
            if by_tags is None:
                return False
            values = by_tags.get(  # by _tags_key(tags), written out
                () if tags is None else tuple(tags) if tags.__class__ is list else tuple(tags.items())
            )
        except TypeError:  # unhashable name or tags: the general path says what is wrong
            return False
        if values is None:
            return False
        if values and self._here[0]:  # type: ignore[index]  # not None: such lists exist only when buffered
            values.append(value)
        else:
            self.append_first(values, value)  # type: ignore[misc]  # not None either
        return True

    def histogram(
        self,
        metric: str,
        value: float,
        tags: Tags = None,
        sample_rate: float | None = None,
        cardinality: str | None = None,
    ) -> None:
        """Record ``value`` in a histogram (sent as is, unlike ``timing``).

        >>> with statsd.capture_lines() as lines:
        ...     statsd.histogram("payload_bytes", 512)
        >>> lines
        ['payload_bytes:512|h']
        """
        self._as_is("h", self._histograms, metric, value, tags, sample_rate)

    def distribution(
        self,
        metric: str,
        value: float,
        tags: Tags = None,
        sample_rate: float | None = None,
        cardinality: str | None = None,
    ) -> None:
        """Record ``value`` in a distribution (``|d``; the exporter treats it like a histogram).

        >>> with statsd.capture_lines() as lines:
        ...     statsd.distribution("batch_size", 3.5)
        >>> lines
        ['batch_size:3.5|d']
        """
        self._as_is("d", self._distributions, metric, value, tags, sample_rate)

    def timer_list(self, metric: Any, tags: Tags) -> tuple:
        """For ``timed``: ``(generation, list, here, first)`` of the timer series ``metric`` with ``tags``:
        the list of its durations **in seconds** (:meth:`PreparedMetric.samples`), while this client's
        ``timing`` is the stock one and sends every call (no default sample rate); else ``(generation,
        None, None, None)``. Valid while ``generation`` is the client's ``settings_generation``.

        >>> c = Client(protocol="null")
        >>> generation, durations, here, first = c.timer_list("view_ms", ["view:x"])
        >>> first(durations, 0.0125); durations.append(0.5) if durations and here[0] else None
        >>> c._transport.pending_lines()
        ['view_ms:12.5:500|ms|#view:x']
        >>> c.close()
        """
        generation = self.settings_generation
        if type(self).timing is Client.timing and self._emit == self._emit_line:
            fast = self.prepare("ms", metric, tags).samples()
            if fast[0] == generation:
                return fast
        return generation, None, None, None

    def _as_is(self, kind: str, lists: dict, metric: Any, value: Any, tags: Tags, rate: Any) -> None:
        """A histogram's or distribution's value, sent as it is: a finite float of a series seen before is
        one append to its list (``lists``: the client's cache of them), as in timing()."""
        if (
            rate is None
            and value.__class__ is float
            and -1e300 < value < 1e300
            and (tags is None or tags.__class__ is list or tags.__class__ is dict)
            and self._appended(lists, metric, value, tags)
        ):
            return
        self._formatted(metric, kind, wire.format_number, value, tags, rate)

    def set(
        self,
        metric: str,
        value: object,
        tags: Tags = None,
        sample_rate: float | None = None,
        cardinality: str | None = None,
    ) -> None:
        """Refused: statsd_exporter does not support sets (``|s``). Strict mode raises; production drops.

        >>> statsd.set("users_seen", "alice")
        Traceback (most recent call last):
        ...
        ValueError: statsd_instrument: bad set call for 'users_seen': statsd_exporter does not support ...
        """
        self._ensure()
        self._invalid(metric, "s", ValueError(_NO_SETS))

    def timed(
        self,
        metric: Any = None,
        tags: Tags = None,
        sample_rate: float | None = None,
        use_ms: bool | None = None,
    ) -> Any:
        """Decorator (sync, async or generator; also bare ``@statsd.timed``) and context manager timing a
        block in float ms (``perf_counter``). ``use_ms`` sets only the unit of ``elapsed`` (datadog's:
        seconds, or whole ms); a context manager without a metric name raises ``TypeError`` as datadog's.

        >>> with statsd.capture_lines() as lines:
        ...     with statsd.timed("render_seconds") as timer:
        ...         pass
        >>> lines[0].startswith("render_seconds:") and lines[0].endswith("|ms"), timer.elapsed >= 0
        (True, True)
        """
        return Timed.of(metric, tags, sample_rate, client=self, use_ms=use_ms)

    def send_line(self, line: str) -> None:
        """Buffer one already formatted statsd line as is (no checks but: no newline inside).

        >>> with statsd.capture_lines() as lines:
        ...     statsd.send_line("legacy.hits:1|c|@0.5")
        >>> lines
        ['legacy.hits:1|c|@0.5']
        """
        if line.__class__ is not str or "\n" in line or "\r" in line or self._pending is not None:
            if self._pending is not None:  # a deferred client's first call reads its settings
                self._ensure()
            if not isinstance(line, str) or "\n" in line or "\r" in line:
                self._invalid(line, "line", ValueError("a line must be a str without newlines"))
                return
        try:
            self._add(line)  # the transport's add, bound once
        except Exception as err:  # a str that cannot be encoded (a lone surrogate): never raise into the app
            self._invalid(line, "line", err)

    # -- for integrations that send the same line shapes over and over (one request after another) ----------

    def prepare(
        self,
        kind: str,
        metric: str,
        tags: Tags = None,
        sample_rate: float | None = None,
        *,
        delta: bool = False,
    ) -> PreparedMetric:
        """A :class:`PreparedMetric`: the line of ``metric`` of ``kind`` (``c g ms h d``) with ``tags`` and
        ``sample_rate``, built once, to send values cheaply. The name and the tags are checked now (a bad
        one raises ``ValueError``); a gauge sets its value unless ``delta=True``. It follows the client: a
        change of settings, prefix, constant tags, transport or capture mode rebuilds it on its next use.

        >>> c = Client(protocol="null", prefix="shop", constant_tags=["env:dev"])
        >>> latency = c.prepare("ms", "db_query_seconds", tags=["table:users"])
        >>> with c.capture_lines() as lines:
        ...     latency.send(12.3456)
        >>> c.configure(protocol="null", prefix="billing")
        >>> with c.capture_lines() as more:
        ...     latency.send(2)
        >>> lines + more
        ['shop.db_query_seconds:12.346|ms|#env:dev,table:users', 'billing.db_query_seconds:2|ms|#table:users']
        >>> latency.line(0.5)
        'billing.db_query_seconds:0.5|ms|#table:users'
        >>> c.close()
        """
        self._ensure()
        if kind not in _FORMATS:
            raise ValueError(f"unknown metric type {kind!r}: expected one of {', '.join(_FORMATS)}")
        if kind != "g" and delta:
            raise ValueError("delta=True is for gauges (kind 'g')")
        if sample_rate == 1:
            sample_rate = None
        wire.sample_rate_suffix(sample_rate)  # raises outside (0, 1]
        prepared = (_PreparedGauge if kind == "g" else PreparedMetric)(
            self, kind, metric, tags, sample_rate, delta
        )
        prepared.line(0)  # checks the name and the tags now
        return prepared

    def send_lines(self, lines: str) -> None:
        """Send formatted ``lines`` (joined by newlines, e.g. from :meth:`PreparedMetric.line`) together with
        everything buffered, now: one datagram when it fits. ``send_line`` of each, then ``flush()``.

        >>> with statsd.capture_lines() as lines:
        ...     statsd.send_lines("hits:1|c\\nlatency:2.5|ms")
        >>> lines
        ['hits:1|c', 'latency:2.5|ms']
        """
        if self._pending is not None:  # a deferred client's first call reads its settings
            self._ensure()
        try:
            self._add_flush(lines)
        except Exception as err:  # a str that cannot be encoded: never raise into the app
            self._invalid(lines, "line", err)

    def invalid_call(self, metric: str, kind: str, error: Exception) -> None:
        """Apply this client's policy to a bad call made on top of it (a declared metric's bad tags):
        strict mode raises ``ValueError`` naming the metric; production drops the call, counts it in
        ``stats["invalid_calls"]`` and warns once per metric. ``kind`` is a line type (``c g ms h d``).

        >>> Client(protocol="null", strict=True).invalid_call("jobs_total", "c", ValueError("no tags"))
        Traceback (most recent call last):
        ...
        ValueError: statsd_instrument: bad counter call for 'jobs_total': no tags
        """
        self._ensure()
        self._invalid(metric, kind, error)

    # -- zero start ----------------------------------------------------------------------------------------

    def add_start_lines(self, provider: Callable[[], List[str]]) -> None:
        """Register ``provider``: it returns lines (built with this client) that each process sends before
        its first other line, and again in front of the datagrams that follow failed or refused sends (an
        exporter that was down or restarted). Never in a uwsgi master (its workers send their own), never in
        capture mode. Declared counters use it to zero-start (:mod:`statsd_instrument.metrics`).

        >>> c = Client(protocol="null")
        >>> c.add_start_lines(lambda: ["jobs_total:0|c"])
        >>> c.increment("jobs_total"); c.flush(); c.stats["sent_lines"]
        2
        >>> c.close()
        """
        # a bound method is held weakly: a declaration that is gone stops sending
        held = weakref.WeakMethod(provider) if inspect.ismethod(provider) else lambda: provider
        self._start_providers.append(held)
        if self._transport is not None:
            self._transport.restart_lines()

    def _start_lines(self) -> List[str]:
        lines: List[str] = []
        for held in list(self._start_providers):
            provider = held()
            if provider is None:
                self._start_providers.remove(held)
                continue
            try:
                lines += provider()
            except Exception:  # a bad declaration is refused when declared; never raise into the app
                log.warning("statsd_instrument: start lines of %r failed", provider, exc_info=True)
        return lines

    # -- buffer control and introspection --------------------------------------------------------------------

    def flush(self) -> None:
        """Send what is buffered now (integrations call it at the end of each request)."""
        if self._transport is not None:
            self._transport.flush()

    def close(self) -> None:
        """Flush and release the socket and the flusher thread; the client stays usable."""
        if self._transport is not None:
            self._transport.close()

    @property
    def dropped(self) -> int:
        """Lines lost in this process: send failures plus bad calls dropped in production mode."""
        stats = self._transport.stats if self._transport is not None else ClientStats()
        return stats.dropped_lines + stats.invalid_calls

    @property
    def stats(self) -> dict:
        """This process's counters: sent_datagrams, sent_lines, dropped_lines, send_errors, invalid_calls."""
        return (self._transport.stats if self._transport is not None else ClientStats()).as_dict()

    @contextlib.contextmanager
    def capture_lines(self, strict: bool | None = True) -> Iterator[List[str]]:
        """Test mode: within the block, lines are kept in the yielded list and nothing is sent.

        ``strict`` (default True) makes bad calls raise; None keeps the configured behaviour. See also
        :func:`statsd_instrument.testing.capture` for parsed records and assertions.

        >>> with statsd.capture_lines() as lines:
        ...     statsd.increment("a")
        >>> lines
        ['a:1|c']
        """
        self._ensure()
        capture = CaptureTransport(self._settings)
        # names are checked afresh against what this capture sent: tests do not see each other's types
        saved = self._names, self._sent
        self._names, self._sent = {kind: {} for kind in guard.EVENT_TYPES}, guard.SentSeries()
        restore = self.use_transport(capture, strict)
        try:
            yield capture.lines
        finally:
            restore()
            self._names, self._sent = saved

    def use_transport(self, transport: Any, strict: bool | None = None) -> Callable[[], None]:
        """Send through ``transport`` (anything with ``add``, ``count``, ``sample``, ``gauge``,
        ``add_request``, ``add_flush``, ``flush``, ``close`` and ``stats``, e.g. a
        :class:`~statsd_instrument.transport.CaptureTransport`) until the returned function
        is called, which brings back the transport in use before; what was buffered is flushed first.
        ``strict`` True/False overrides the strict mode meanwhile. Prepared lines follow both switches.

        >>> c = Client(protocol="null")
        >>> capture = CaptureTransport(c.settings)
        >>> restore = c.use_transport(capture)
        >>> c.increment("a"); restore(); c.increment("b")
        >>> capture.lines
        ['a:1|c']
        >>> c.close()
        """
        self._ensure()
        self._transport.flush()
        saved = (self._transport, self._strict)
        self._route(transport, self._strict if strict is None else strict)

        def restore() -> None:
            self._route(*saved)

        return restore


class PreparedMetric:
    """One metric's line, made by :meth:`Client.prepare`: ``send(value)`` buffers it with ``value``,
    ``line(value)`` returns its text (for :meth:`Client.send_lines`). It checks ``client.settings_generation``
    on each use and rebuilds itself when the client's settings, transport or capture mode changed.
    ``drops`` are the reasons of tags left out (:mod:`~statsd_instrument.validation`), counted by ``send``.
    """

    __slots__ = (
        "_format",
        "_head",
        "_key",
        "_tail",
        "client",
        "delta",
        "drops",
        "generation",
        "kind",
        "metric",
        "sample_rate",
        "tags",
    )

    def __init__(
        self, client: Client, kind: str, metric: str, tags: Tags, sample_rate: float | None, delta: bool
    ) -> None:
        self.client = client
        self.kind = kind
        self.metric = metric
        self.tags = tags
        self.sample_rate = sample_rate
        self.delta = delta
        self.generation = -1
        self.drops: tuple = ()
        self._format = _FORMATS[kind]

    def _build(self) -> None:
        client = self.client
        client._ensure()
        # drop reasons from the pure core: counted on each send, not here
        self.drops = validation.tag_text(self.tags).drops if self.tags else ()
        if self.drops:
            tail = validation.format_tags(self.tags, _UNCOUNTED, client._settings.constant_tags)
        else:
            tail = client._tags(self.tags)
        name = client._name(self.metric, self.kind)
        self._head = name + ":"
        self._tail = "|" + self.kind + wire.sample_rate_suffix(self.sample_rate) + tail
        # merged in the client's buffer within the flush window (see statsd_instrument.transport); a gauge
        # always (its send counts dropped tags and samples itself)
        mergeable = (self.kind in _MERGED and self.sample_rate is None and not self.drops) or self.kind == "g"
        self._key = (name, self.kind, tail) if mergeable else None
        self.generation = client.settings_generation

    def line(self, value: Any) -> str:
        """The text ``send(value)`` would buffer (no sampling decision); a bad value raises ``ValueError``."""
        if self.generation != self.client.settings_generation:
            self._build()
        return self._head + self._format(value) + self._tail

    def template(self) -> tuple[str, str]:
        """``(head, tail)``: the line is ``head + value + tail`` with the value formatted as :mod:`~.wire`
        does for this type (``format_ms`` for ``ms``), for callers that batch lines and cache the text;
        valid while :attr:`generation` equals the client's ``settings_generation`` (compare before use).

        >>> c = Client(protocol="null", prefix="shop")
        >>> c.prepare("c", "orders_total", {"status": "paid"}).template()
        ('shop.orders_total:', '|c|#status:paid')
        >>> c.close()
        """
        if self.generation != self.client.settings_generation:
            self._build()
        return self._head, self._tail

    def key(self) -> tuple[str, str, str] | None:
        """The buffer key ``(name, type, tag suffix)`` its values merge under in the client's flush window
        (:mod:`~statsd_instrument.transport`), or None for a line that is never merged (a sample rate or
        tags left out, but for a gauge); valid while :attr:`generation` equals the client's
        ``settings_generation``.

        >>> c = Client(protocol="null", prefix="shop")
        >>> c.prepare("c", "orders_total", {"status": "paid"}).key()
        ('shop.orders_total', 'c', '|#status:paid')
        >>> c.close()
        """
        if self.generation != self.client.settings_generation:
            self._build()
        return self._key

    def counter(self) -> tuple[int, list | None, Any, Callable[[list, int], None] | None]:
        """``(generation, tally, here, first)``: for a counter line that merges in the flush window, its
        series' tally in the client's buffer (:meth:`~statsd_instrument.transport.BufferedTransport.tally`):
        an increment by ``n`` (a non-negative int, which the caller checks) is ``tally.append(n)`` while
        ``tally`` is not empty and ``here[0]`` reads 1 (this process), else ``first(tally, n)``. Valid while
        ``generation`` equals the client's ``settings_generation`` (compare before use, or keep it in a
        :meth:`Client.series_cache`), as :meth:`key`; for any other line, or in capture mode, it is
        ``(-1, None, None, None)``: call ``send``.

        >>> c = Client(protocol="null")
        >>> generation, tally, here, first = c.prepare("c", "jobs_total").counter()
        >>> first(tally, 2); tally.append(3) if tally and here[0] else None; c._transport.pending_lines()
        ['jobs_total:5|c']
        >>> c.close()
        """
        return self._series_list("c")

    def samples(self) -> tuple[int, list | None, Any, Callable[[list, float], None] | None]:
        """As :meth:`counter`, for a timer, histogram or distribution line that merges in the flush window:
        the list of its values (:meth:`~statsd_instrument.transport.BufferedTransport.samples`), for a
        finite float the caller checks: a timer's durations **in seconds** (a non-negative float, sent as
        ``seconds * 1000`` ms), a histogram's or distribution's values as they are; each formatted as
        ``send`` would.

        >>> c = Client(protocol="null")
        >>> generation, durations, here, first = c.prepare("ms", "job_ms").samples()
        >>> first(durations, 0.25); durations.append(1.5) if durations and here[0] else None
        >>> c._transport.pending_lines()
        ['job_ms:250:1500|ms']
        >>> c.close()
        """
        return self._series_list("ms" if self.kind == "ms" else "hd")

    def gauge(self) -> tuple[int, list | None, Any, Callable[[list, Any], None] | None]:
        """As :meth:`counter`, for a gauge line (never sampled): the list of its series' changes
        (:meth:`~statsd_instrument.transport.BufferedTransport.gauges`): a delta ``n`` appends ``n``, a set
        of ``n`` appends ``(n,)``, for an int or a finite float the caller checks.

        >>> c = Client(protocol="null")
        >>> generation, changes, here, first = c.prepare("g", "depth").gauge()
        >>> first(changes, (7,)); changes.append(-2) if changes and here[0] else None
        >>> c._transport.pending_lines()
        ['depth:7|g', 'depth:-2|g']
        >>> c.close()
        """
        return self._series_list("g") if self.sample_rate is None else (-1, None, None, None)

    def _series_list(self, kinds: str) -> tuple[int, list | None, Any, Any]:
        """The lock-free list of this line's series in the client's buffer if its type is one of ``kinds``
        (``c``, ``ms``, ``hd`` or ``g``) and it merges."""
        client = self.client
        if self.generation != client.settings_generation:
            self._build()
        values = None
        kind = self.kind
        if kind in kinds and self._key is not None:
            if kind == "c" and client._tally is not None:
                values = client._tally(self._key)
            elif kind == "g" and client._gauge_list is not None:
                values = client._gauge_list(self._key)
            elif kind not in ("c", "g") and client.samples is not None:
                values = client.samples(None, self._key, 1000.0 if kind == "ms" else None)
        if values is None:
            return -1, None, None, None  # a generation no client has: never taken
        return self.generation, values, client._here, client.append_first

    def send(self, value: Any) -> None:
        """Buffer the line with ``value`` (sampled at ``sample_rate``); never raises in production mode."""
        client = self.client
        try:
            if self.generation != client.settings_generation:
                self._build()
            key = self._key
            if key is not None:
                if self.kind != "c":
                    client._sample(key, self._format(value))
                    return
                if type(value) is int and value >= 0:
                    client._count(key, value)
                    return
            if self.drops:  # tags left out are counted on every send
                client._tag_policy.dropped(self.drops, self.tags)
            rate = self.sample_rate
            if rate is not None and _random() >= rate:
                return
            client._add(self.line(value))
        except Exception as err:
            client._invalid(self.metric, self.kind, err)


class _PreparedGauge(PreparedMetric):
    """A prepared gauge: ``+N``/``-N`` with ``delta``; else a negative value is set as ``0`` then ``-N``.
    ``send`` merges its change into the series in the client's flush window (see ``Client.gauge``)."""

    __slots__ = ()

    def send(self, value: Any) -> None:
        client = self.client
        try:
            if self.generation != client.settings_generation:
                self._build()
            number = _gauge_number(value)
            if self.drops:  # tags left out are counted on every send
                client._tag_policy.dropped(self.drops, self.tags)
            rate = self.sample_rate
            if rate is None:
                client._gauge(self._key, number if self.delta else (number,))
            elif _random() < rate:
                client._gauge(self._key, number if self.delta else (number,), wire.sample_rate_suffix(rate))
        except Exception as err:
            client._invalid(self.metric, self.kind, err)

    def line(self, value: Any) -> str:
        if self.generation != self.client.settings_generation:
            self._build()
        text = self._format(value)
        if self.delta:
            return self._head + (text if text[0] == "-" else "+" + text) + self._tail
        if text[0] == "-":
            return f"{self._head}0{self._tail}\n{self._head}{text}{self._tail}"
        return self._head + text + self._tail


class _ClientTagPolicy(TagPolicy):
    """The tag policy of a client: strict as the client is now, drops counted in its current stats."""

    __slots__ = ("client", "dropped_count")

    def __init__(self, client: Client) -> None:  # no super().__init__: counts and strict follow the client
        self.client = client
        self.dropped_count = 0

    @property
    def strict(self) -> bool:
        return self.client._strict

    @property
    def counts(self) -> dict:
        return self.client._transport.stats.dropped_tags

    def dropped(self, drops: tuple, tags: object) -> None:
        self.dropped_count += len(drops)
        super().dropped(drops, tags)


_reported: set = set()


def reported(err: ConfigError, strict: bool) -> Settings:
    """Raise ``err`` in strict mode; otherwise log it once and return settings that send nothing.

    >>> reported(ConfigError("DD_DOGSTATSD_PORT='x': expected an integer port 1-65535"), False).protocol
    'null'
    """
    if strict:
        raise err
    settings = Settings(protocol="null", disabled=str(err))
    if settings.disabled not in _reported:
        _reported.add(settings.disabled)
        log.error("statsd_instrument: %s; sending no metrics (counted as dropped)", settings.disabled)
    return settings


def settings_or_disabled(kwargs: Mapping[str, Any]) -> Settings:
    """``load_settings(**kwargs)``; a :class:`ConfigError` raises in strict mode, and otherwise is logged
    once (one line naming the variable and the value) and gives settings that send nothing
    (``disabled`` says why; the client counts each line in ``stats["dropped_lines"]``), so a configuration
    error surfaces where the configuration is read and never from a metric call.

    >>> settings_or_disabled({"port": "nine", "strict": False}).disabled
    "port='nine': expected an integer port 1-65535"
    """
    try:
        settings = load_settings(**kwargs)
    except ConfigError as err:
        return reported(err, strict_default(kwargs.get("strict"), kwargs.get("env")))
    if settings.disabled and settings.disabled not in _reported:
        _reported.add(settings.disabled)
        log.info("statsd_instrument: %s: sending no metrics", settings.disabled)
    return settings


def _gauge_number(value: Any) -> int | float:
    """``value`` as a gauge change holds it: an int within +-1e300 as is, any other number as a float (as
    :func:`~statsd_instrument.wire.format_number` prints it, and the exporter reads it: a float64, so a
    window's changes always add up); a bool, a non-number, a non-finite number or an int beyond the
    largest float raises ValueError.

    >>> _gauge_number(3), _gauge_number(2.5), _gauge_number(10**301)
    (3, 2.5, 1e+301)
    >>> _gauge_number(10**400)
    Traceback (most recent call last):
    ...
    ValueError: value 1000...000 is beyond the largest float64 (what the exporter reads)
    """
    kind = value.__class__
    if kind is int and -1e300 < value < 1e300:
        return value
    wire.format_number(value)  # raises for what cannot be sent
    try:
        return value if kind is float else float(value)
    except OverflowError:
        text = str(value)
        raise ValueError(
            f"value {text[:4]}...{text[-3:]} is beyond the largest float64 (what the exporter reads)"
        ) from None


_MERGED = frozenset({"c", "ms", "h", "d"})
_LIST_OR_DICT = (list, dict)


def _tags_key(tags: Any) -> tuple:
    """The key the client's caches of series lists file ``tags`` under: no tags, a list, or a dict (its
    items: ``{"k": "v"}`` and ``["k:v"]`` are different keys of the same series).

    >>> _tags_key(None), _tags_key(["k:v"]), _tags_key({"k": "v"})
    ((), ('k:v',), (('k', 'v'),))
    """
    if tags is None:
        return ()
    return tuple(tags) if tags.__class__ is list else tuple(tags.items())


#: What the clients of this process have sent, per destination (``settings.address()``): the names one
#: exporter receives must keep one type each and not collide.
SENT_IN_PROCESS: dict = {}
_UNCOUNTED = TagPolicy(strict=False)  # PreparedMetric builds its text with it; send() counts the drops
_FORMATS: dict = {
    "c": wire.format_number,
    "g": wire.format_number,
    "ms": wire.format_ms,
    "h": wire.format_number,
    "d": wire.format_number,
}
_KINDS = {"c": "counter", "g": "gauge", "ms": "timing", "h": "histogram", "d": "distribution", "s": "set"}
_NO_SETS = "statsd_exporter does not support sets (|s); count distinct values elsewhere"

#: The module-level client: settings come from the environment on first use; ``configure()`` changes them.
statsd = Client.deferred()


def configure(**kwargs: Any) -> Client:
    """Reconfigure the module-level ``statsd`` in place (same keywords as :class:`Client`); returns it.

    >>> configure(protocol="null") is statsd
    True
    >>> _ = configure()  # back to the environment's settings
    """
    statsd.configure(**kwargs)
    return statsd
