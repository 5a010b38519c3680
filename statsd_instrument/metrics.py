"""Declared metrics: one declaration gives the fast call, the mapping rule, the zero start and the checks.

Declare a metric once, at module level, with its help text and tag keys; call it with tag values::

    ORDERS = Counter("orders_total", "Orders placed, by status.", tags={"status": ("paid", "failed")})
    CHECKOUT = Histogram("checkout_seconds", "Checkout time.", tags=("step",), buckets=(0.1, 0.5, 1, 5))
    QUEUE = Gauge("queue_depth", "Jobs waiting.", tags=("queue",))

    ORDERS.increment(status="paid")
    with CHECKOUT.time(step="pay"): ...
    QUEUE.set(12, queue="default")

* **Names.** The declared name is the statsd name on the wire *and* the Prometheus name: the rule that
  ``statsd-instrument gen-mapping`` writes maps it 1:1 and adds the type, the help text, the buckets or
  quantiles and the ttl. ``prometheus_name=`` renames (the built-in request metrics use it). A client
  prefix (``STATSD_PREFIX``) is part of the wire name: give ``gen-mapping --prefix`` the same one.
* **Tags.** A call passes exactly the declared keys as keyword arguments; values are normalised as every
  tag value is. A missing or unknown key is a programming error: strict mode (tests, ``-X dev``) raises,
  production drops the call, counts it in ``statsd.stats["invalid_calls"]`` and logs once.
* **Cost.** The line of each tag-value combination is prepared once by the client and cached (at most
  :data:`MAX_SERIES` per metric); a call is a dict lookup per tag key and, for a counter's increment by a
  non-negative int, a timer's observation of a non-negative float or a gauge's set or delta of an int or a
  finite float, one ``list.append`` to the series' list in the client's buffer (no lock: about 0.3-0.5 µs;
  a gauge's sets and deltas merge within the flush window, see :mod:`statsd_instrument.transport`); other
  calls buffer the prepared line. ``.labels(...)`` returns the prepared series itself, for the hottest paths.
* **Zero start.** A counter whose tag values are all known (no tags, ``tags={"key": (values...)}`` or
  ``initial=[{...}]``) is sent as ``name:0|c`` (adds 0) for each combination by every process before its
  first line (not in a uwsgi master), and again after the exporter was unreachable and answers again, so
  ``increase()`` sees every increment from the first: see :meth:`statsd_instrument.Client.add_start_lines`.
* **Histograms** are statsd timers on the wire (float milliseconds typed ``ms``, which the exporter
  divides by 1000): ``observe()`` takes the Prometheus value (seconds). ``timer=False`` sends ``|h``
  values as they are instead (bytes, sizes).

>>> from statsd_instrument.testing import capture
>>> JOBS = Counter("jobs_total", "Jobs run.", tags={"queue": ("default", "mail")})
>>> RUN = Histogram("job_seconds", "Job run time.", tags=("queue",), buckets=(0.1, 1, 10))
>>> with capture() as cap:
...     JOBS.increment(queue="mail")
...     RUN.observe(0.25, queue="mail")
>>> cap.lines
['jobs_total:1|c|#queue:mail', 'job_seconds:250|ms|#queue:mail']
>>> with capture():
...     JOBS.increment(qeue="mail")
Traceback (most recent call last):
...
ValueError: statsd_instrument: bad counter call for 'jobs_total': tags ['qeue'] given, ['queue'] declared
"""

from __future__ import annotations

import itertools
import keyword
import logging
import math
import sys
import time
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence, Union

from statsd_instrument import validation
from statsd_instrument.client import statsd
from statsd_instrument.measure import _Measure

log = logging.getLogger("statsd_instrument")

#: tag-value combinations whose prepared line a metric keeps; more are sent uncached (and logged once)
MAX_SERIES = 1000

TagsDeclaration = Union[Sequence[str], Mapping[str, Iterable[object]], None]
#: a gauge value its series' list takes (an int, or a float within +-1e300: no nan or inf; comparing an int
#: with a float costs 0.1 µs: an int too large for the exporter is left out by the buffer, see
#: BufferedTransport._fold_gauge)
_GAUGE_CHECK = "value.__class__ is int or (value.__class__ is float and -1e300 < value < 1e300)"
_perf_counter = time.perf_counter


class Metric:
    """What every declared metric has: names, help, tag keys, known tag values, its client and source line.

    Subclasses set ``kind`` (the Prometheus type), ``statsd_type`` (the wire type) and ``match_type`` (the
    mapping's ``match_metric_type``).
    """

    kind: ClassVar[str] = ""
    statsd_type: str = ""
    match_type: ClassVar[str] = ""
    _series_class: ClassVar[type]
    #: (method, the default of its ``value`` or None for no value, what it does with ``series``, the check of
    #: a value that may go to the series' lock-free list or "", what it returns for bad tags[, what it appends
    #: to that list: ``value`` if not given]) of the calls taking tags as keyword arguments (with ``labels``,
    #: which every metric has)
    _calls: tuple[tuple[Any, ...], ...] = ()

    def __init__(
        self,
        name: str,
        help: str,
        *,
        tags: TagsDeclaration = (),
        prometheus_name: str | None = None,
        ttl_s: float | None = None,
        client: Any = None,
    ) -> None:
        self.name = validation.check_name(name)
        if not isinstance(help, str) or not help.strip() or "\n" in help:
            raise ValueError(f"{name}: help must be a non-empty one-line str, got {help!r}")
        self.help = help
        self.prometheus_name = _check_prometheus_name(name, prometheus_name)
        if isinstance(tags, str):
            raise TypeError(f"{name}: tags must be a sequence of keys or a mapping, not the str {tags!r}")
        known = dict(tags) if isinstance(tags, Mapping) else None
        self.tag_keys: tuple[str, ...] = tuple(_check_key(name, k) for k in (known or tags or ()))
        if len(set(self.tag_keys)) != len(self.tag_keys):
            raise ValueError(f"{name}: tag keys repeat: {list(self.tag_keys)}")
        #: the known values of each tag key (``tags={"key": (values...)}``), else None
        self.known_values: dict[str, tuple[str, ...]] | None = (
            {k: tuple(_value(k, v) for v in _values(name, k, vs)) for k, vs in known.items()}
            if known is not None
            else None
        )
        if ttl_s is not None and (not isinstance(ttl_s, (int, float)) or not 0 < ttl_s < math.inf):
            raise ValueError(f"{name}: ttl_s must be a positive number of seconds, got {ttl_s!r}")
        self.ttl_s = ttl_s
        self.client = statsd if client is None else client
        #: (file, line) of the declaration, for check-mapping's findings
        self.source = _caller()
        self._key_set = frozenset(self.tag_keys)
        self._series: dict = {}  # {str values in declared key order: series}: a call's one lookup
        self._typed: dict = {}  # {((type, value), ...): series} for values of other types
        # {1st key's value: {2nd key's value: ... the series' lock-free list in the client's buffer}} ({():
        # list} without tags), str values only: the generated calls' lookup (a dict per key costs less than
        # hashing a tuple of values); the client empties it when its settings generation changes
        # (Client.series_cache), so a call checks no generation
        self._lists: dict = self.client.series_cache(self)
        self._warned_cardinality = False
        _compile_calls(self, (("labels", None, "return series", "", "_NO_SERIES"), *self._calls))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, tags={list(self.tag_keys)!r})"

    def labels(self, **tags: object) -> Any:
        """The series of one tag-value combination (prepared and cached): call it without tags.

        >>> HITS = Counter("cache_hits_total", "Cache hits.", tags=("cache",))
        >>> SESSIONS = HITS.labels(cache="sessions")
        >>> with statsd.capture_lines() as lines:
        ...     SESSIONS.increment()
        >>> lines
        ['cache_hits_total:1|c|#cache:sessions']
        """
        series = self._find(tags)
        return _NO_SERIES if series is None else series  # None: dropped and counted (production mode)

    def _find(self, tags: Mapping[str, object]) -> Any:
        """The series of ``tags`` (cached, or built now); None if the tags are bad (rejected)."""
        try:
            if len(tags) != len(self.tag_keys) or not self._key_set.issuperset(tags):
                raise ValueError(f"tags {sorted(tags)} given, {sorted(self.tag_keys)} declared")
            values = tuple(tags[k] for k in self.tag_keys)
            key: tuple[object, ...] | None
            cache, key = self._series, values
            if not all(type(v) is str for v in values):
                # 1, 1.0 and True are equal dict keys that print differently: such values are cached by type
                cache, key = self._typed, tuple((type(v), v) for v in values)
            try:
                return cache[key]
            except KeyError:
                pass
            except TypeError:  # unhashable values: formatted, not cached
                key = None
            series = self._series_class(self, tuple(f"{k}:{_value(k, tags[k])}" for k in self.tag_keys))
        except Exception as err:
            _reject(self.client, self.name, self.statsd_type, err)
            return None
        if key is None:
            pass
        elif len(self._series) + len(self._typed) < MAX_SERIES:
            cache[key] = series
            if cache is self._series:
                series.key = key
        elif not self._warned_cardinality:
            self._warned_cardinality = True
            log.warning(
                "statsd_instrument: %s has more than %d tag-value combinations; later ones are sent "
                "uncached (bound your label values)",
                self.name,
                MAX_SERIES,
            )
        return series

    def combinations(self) -> list[dict[str, str]]:
        """Every tag-value combination known in advance (for the zero start); [] if some are unknown.

        >>> Counter("a_total", "A.", tags={"x": ("1", "2"), "y": ("z",)}).combinations()
        [{'x': '1', 'y': 'z'}, {'x': '2', 'y': 'z'}]
        >>> Counter("b_total", "B.").combinations(), Counter("c_total", "C.", tags=("x",)).combinations()
        ([{}], [])
        """
        if not self.tag_keys:
            return [{}]
        if self.known_values is None:
            return []
        values = [self.known_values[k] for k in self.tag_keys]
        return [dict(zip(self.tag_keys, combo)) for combo in itertools.product(*values)]


class _Series:
    """One tag-value combination of a declared metric: its line prepared by ``Client.prepare``."""

    __slots__ = ("key", "metric", "prepared", "tags")

    def __init__(self, metric: Metric, tags: tuple[str, ...]) -> None:
        self.metric = metric
        self.tags = tags
        self.prepared = metric.client.prepare(metric.statsd_type, metric.name, tags)
        #: the tag values (str) it is cached under in its metric, else None (see _remember)
        self.key: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        return f"<{self.metric.name} {','.join(self.tags)}>"


class _ListedSeries(_Series):
    """A series with a lock-free list in the client's buffer: ``fast`` is ``(generation, list, here, first)``
    from its prepared line (:meth:`~statsd_instrument.client.PreparedMetric.counter`, ``samples``,
    ``gauge``), made in the client's settings generation ``checked``: while the generation holds, a value the
    series' check passes is one ``list.append`` (``first(list, value)`` when the list is empty or
    ``here[0]`` reads 0)."""

    __slots__ = ("checked", "client", "fast")

    def __init__(self, metric: Metric, tags: tuple[str, ...]) -> None:
        super().__init__(metric, tags)
        self.client = metric.client
        self._refresh()

    def _refresh(self) -> None:
        self.checked = self.client.settings_generation
        prepared = self.prepared
        kind = prepared.kind
        self.fast = (
            prepared.counter() if kind == "c" else prepared.gauge() if kind == "g" else prepared.samples()
        )


class _CounterSeries(_ListedSeries):
    """A counter's series: an increment by a non-negative int goes to its tally (see _ListedSeries)."""

    __slots__ = ()

    def increment(self, value: float = 1) -> None:
        """Add ``value`` (default 1)."""
        fast = (
            self.fast
        )  # the list's append written out here, in _GaugeSeries and _ObserverSeries: a call costs 50 ns
        if fast[0] == self.client.settings_generation and value.__class__ is int and value >= 0:
            values = fast[1]
            if values and fast[2][0]:
                values.append(value)
            else:
                fast[3](values, value)  # type: ignore[misc, arg-type]  # both set while the generation holds
            return
        self.prepared.send(value)
        if self.checked != self.client.settings_generation:
            self._refresh()


class _GaugeSeries(_ListedSeries):
    """A gauge's series: a set or a delta of an int or a finite float goes to its list of changes (see
    _ListedSeries; merged within the client's flush window); anything else is sent as the client sends."""

    __slots__ = ("_deltas",)

    def __init__(self, metric: Metric, tags: tuple[str, ...]) -> None:
        self._deltas: Any = None
        super().__init__(metric, tags)

    def set(self, value: float) -> None:
        """Set the gauge (a negative value goes as ``0`` then the value, as ``statsd.gauge`` does)."""
        self._change(value, (value,), self.prepared)

    def inc(self, value: float = 1) -> None:
        """Add ``value`` (a ``+N`` delta, summed over every process)."""
        self._change(value, value, None)

    def dec(self, value: float = 1) -> None:
        """Subtract ``value`` (a ``-N`` delta)."""
        negative = -value if isinstance(value, _NUMBERS) and not isinstance(value, bool) else value
        self._change(value, negative, None)

    def _change(self, value: Any, change: Any, prepared: Any) -> None:
        """Append ``change`` to the series' list if ``value`` passes Gauge's check, else send it through
        ``prepared`` (the set line; None: the delta line, which gets ``change``)."""
        fast = self.fast
        if fast[0] == self.client.settings_generation and (
            value.__class__ is int or (value.__class__ is float and -1e300 < value < 1e300)
        ):
            values = fast[1]
            if values and fast[2][0]:
                values.append(change)
            else:
                fast[3](values, change)  # type: ignore[misc, arg-type]  # set while the generation holds
            return
        if prepared is not None:
            prepared.send(value)
        else:
            if self._deltas is None:
                self._deltas = self.metric.client.prepare("g", self.metric.name, self.tags, delta=True)
            self._deltas.send(change)
        if self.checked != self.client.settings_generation:
            self._refresh()


class _ObserverSeries(_ListedSeries):
    """A histogram's or summary's series: an observation that is a finite, non-negative float (seconds for a
    timer) goes to its list (see _ListedSeries); anything else is formatted and sent as the client sends."""

    __slots__ = ()

    def observe(self, value: float) -> None:
        """Record ``value`` in the metric's unit (seconds for timers: sent as milliseconds)."""
        fast = self.fast
        # a finite, non-negative float (_NON_NEGATIVE_FLOAT, the check of Histogram._calls): its list takes it
        if fast[0] == self.client.settings_generation and value.__class__ is float and 0.0 <= value < 1e300:
            values = fast[1]
            if values and fast[2][0]:
                values.append(value)
            else:
                fast[3](values, value)  # type: ignore[misc, arg-type]  # both set while the generation holds
            return
        if self.metric.statsd_type == "ms" and value.__class__ in _NUMBERS:
            value = value * 1000.0
        self.prepared.send(value)  # anything but a finite number is a bad call (the client's policy)
        if self.checked != self.client.settings_generation:
            self._refresh()

    def time(self) -> _Timer:
        """Context manager and decorator (sync or async) observing the seconds a block or call takes."""
        return _Timer(self)


class _Timer(_Measure):
    """Times a block or a call (``perf_counter``) and observes the seconds in one series.

    Made anew by each ``time()`` (a block in a coroutine may interleave with another's), so it sets only
    what its context manager and decorator use: no tags, outcome or sample rate of its own."""

    def __init__(self, series: _ObserverSeries) -> None:
        self.metric = series.metric.name
        self.series = series
        self._starts: dict[int, list[float]] = {}

    def _record(self, metric: str | None, start: float, error: BaseException | None) -> None:
        self.series.observe(_perf_counter() - start)


class _ExceptionCounter(_Measure):
    """Counts the exceptions of some classes that leave a block or call (:meth:`Counter.count_exceptions`)."""

    def __init__(self, series: _CounterSeries, classes: tuple[type[BaseException], ...]) -> None:
        self.metric = series.metric.name
        self.series = series
        self.classes = classes
        self._starts: dict[int, list[float]] = {}

    def _record(self, metric: str | None, start: float, error: BaseException | None) -> None:
        if error is not None and isinstance(error, self.classes):
            self.series.increment()


class _InProgress(_Measure):
    """+1 on a gauge series while a block or call runs, -1 when it ends (:meth:`Gauge.track_inprogress`)."""

    def __init__(self, series: _GaugeSeries) -> None:
        self.metric = series.metric.name
        self.series = series
        self._starts: dict[int, list[float]] = {}

    def _begin(self) -> float:
        self.series.inc()
        return 0.0

    def _record(self, metric: str | None, start: float, error: BaseException | None) -> None:
        self.series.dec()


class _NoSeries:
    """What ``labels()`` returns for bad tags in production mode: every call does nothing."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return _nothing


def _nothing(*args: Any, **kwargs: Any) -> Any:
    return _NO_TIMER


class _NoTimer:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None

    def __call__(self, func: Callable) -> Callable:
        return func


_NO_SERIES = _NoSeries()
_NO_TIMER = _NoTimer()


class Counter(Metric):
    """A counter: ``increment(value=1, **tags)``; zero-started when its tag values are known.

    ``initial=[{"status": "paid"}, ...]`` lists combinations to zero-start when the keys' values are not
    all known in advance.

    >>> ORDERS = Counter("orders_total", "Orders placed, by status.", tags={"status": ("paid", "failed")})
    >>> with statsd.capture_lines() as lines:
    ...     ORDERS.increment(status="paid")
    ...     ORDERS.increment(3, status="failed")
    >>> lines
    ['orders_total:1|c|#status:paid', 'orders_total:3|c|#status:failed']
    >>> ORDERS.zero_lines()
    ['orders_total:0|c|#status:paid', 'orders_total:0|c|#status:failed']
    """

    kind = "counter"
    statsd_type = "c"
    match_type = "counter"
    _series_class = _CounterSeries
    _calls = (
        ("increment", "=1", "series.increment(value)", "value.__class__ is int and value >= 0", "None"),
    )

    def __init__(
        self,
        name: str,
        help: str,
        *,
        tags: TagsDeclaration = (),
        initial: Iterable[Mapping[str, object]] = (),
        prometheus_name: str | None = None,
        ttl_s: float | None = None,
        client: Any = None,
    ) -> None:
        super().__init__(name, help, tags=tags, prometheus_name=prometheus_name, ttl_s=ttl_s, client=client)
        self.initial = [dict(combo) for combo in initial]
        for combo in self.initial:
            if set(combo) != self._key_set:
                raise ValueError(f"{name}: initial {combo!r} does not have the declared keys {self.tag_keys}")
        if self.combinations() or self.initial:
            self.client.add_start_lines(self.zero_lines)

    def increment(self, value: float = 1, /, **tags: object) -> None:
        """Add ``value`` (default 1) to the series of ``tags`` (exactly the declared keys)."""
        self.labels(**tags).increment(value)

    def count_exceptions(self, exception: Any = Exception, /, **tags: object) -> Any:
        """Context manager and decorator (sync or async): add 1 to the series of ``tags`` for each exception
        of type ``exception`` (a class or a tuple of classes) that leaves the block or call; it is re-raised
        unchanged (prometheus_client's ``count_exceptions``).

        >>> FAILED = Counter("payment_failures_total", "Payments that raised.", tags=("step",))
        >>> @FAILED.count_exceptions(ValueError, step="charge")
        ... def charge(amount):
        ...     if amount < 0:
        ...         raise ValueError(amount)
        >>> with statsd.capture_lines() as lines:
        ...     charge(5)
        ...     try:
        ...         charge(-1)
        ...     except ValueError:
        ...         pass
        >>> lines
        ['payment_failures_total:1|c|#step:charge']
        """
        classes = exception if isinstance(exception, tuple) else (exception,)
        if not classes or not all(isinstance(c, type) and issubclass(c, BaseException) for c in classes):
            raise TypeError(f"{self.name}: count_exceptions: expected exception classes, got {exception!r}")
        series = self.labels(**tags)
        return _NO_TIMER if series is _NO_SERIES else _ExceptionCounter(series, classes)

    def zero_lines(self) -> list[str]:
        """The ``+0`` line of every known combination (what each process sends first; see the module doc)."""
        combos: list[Mapping[str, object]] = list(self.combinations())
        combos += [c for c in self.initial if c not in combos]
        lines = []
        for combo in combos:
            series = self.labels(**combo)
            if series is not _NO_SERIES:
                lines.append(series.prepared.line(0))
        return lines


class Gauge(Metric):
    """A gauge: ``set(value, **tags)``, ``inc(value=1, **tags)``, ``dec(value=1, **tags)`` (deltas).

    >>> QUEUE = Gauge("queue_depth", "Jobs waiting.", tags=("queue",))
    >>> with statsd.capture_lines() as lines:
    ...     QUEUE.set(-2, queue="mail")
    ...     QUEUE.inc(queue="mail")
    >>> lines
    ['queue_depth:0|g|#queue:mail\\nqueue_depth:-2|g|#queue:mail', 'queue_depth:+1|g|#queue:mail']
    """

    kind = "gauge"
    statsd_type = "g"
    match_type = "gauge"
    _series_class = _GaugeSeries
    # (an int or a finite float: a change its series' list takes, appended as the last field says)
    _calls = (
        ("set", "", "series.set(value)", _GAUGE_CHECK, "None", "(value,)"),
        ("inc", "=1", "series.inc(value)", _GAUGE_CHECK, "None", "value"),
        ("dec", "=1", "series.dec(value)", _GAUGE_CHECK, "None", "-value"),
    )

    def set(self, value: float, /, **tags: object) -> None:
        """Set the series of ``tags`` to ``value``."""
        self.labels(**tags).set(value)

    def inc(self, value: float = 1, /, **tags: object) -> None:
        """Add ``value`` to the series of ``tags`` (summed over every process)."""
        self.labels(**tags).inc(value)

    def dec(self, value: float = 1, /, **tags: object) -> None:
        """Subtract ``value`` from the series of ``tags``."""
        self.labels(**tags).dec(value)

    def track_inprogress(self, **tags: object) -> Any:
        """Context manager and decorator (sync, async or generator): +1 on the series of ``tags`` while a
        block or call runs, -1 when it ends, however it ends (prometheus_client's ``track_inprogress``;
        deltas, so every process's blocks add up).

        >>> BUSY = Gauge("exports_in_progress", "Exports running.", tags=("kind",))
        >>> @BUSY.track_inprogress(kind="csv")
        ... def export():
        ...     pass
        >>> with statsd.capture_lines() as lines:
        ...     export()
        >>> lines
        ['exports_in_progress:+1|g|#kind:csv', 'exports_in_progress:-1|g|#kind:csv']
        """
        series = self.labels(**tags)
        return _NO_TIMER if series is _NO_SERIES else _InProgress(series)

    def set_to_current_time(self, **tags: object) -> None:
        """Set the series of ``tags`` to the current Unix time in seconds (prometheus_client's; for "last
        success" gauges: ``time() - gauge`` is the age)."""
        self.labels(**tags).set(time.time())


#: the values a histogram's call appends to its series' list (any other value takes the prepared line)
_NON_NEGATIVE_FLOAT = "value.__class__ is float and 0.0 <= value < 1e300"


class Histogram(Metric):
    """A histogram with declared buckets: ``observe(seconds, **tags)``, ``time(**tags)``.

    ``buckets`` (sorted, in the Prometheus unit) go into the mapping rule; None leaves them to the mapping
    file's defaults. A timer on the wire unless ``timer=False`` (then ``|h``, values as they are).

    >>> CHECKOUT = Histogram("checkout_seconds", "Checkout time.", tags=("step",), buckets=(0.1, 1, 5))
    >>> with statsd.capture_lines() as lines:
    ...     CHECKOUT.observe(0.0125, step="pay")
    ...     with CHECKOUT.time(step="ship"):
    ...         pass
    >>> lines[0], lines[1].startswith("checkout_seconds:"), lines[1].endswith("|ms|#step:ship")
    ('checkout_seconds:12.5|ms|#step:pay', True, True)
    """

    kind = "histogram"
    statsd_type = "ms"
    match_type = "observer"
    _series_class = _ObserverSeries
    # seconds in, milliseconds on the wire (anything but a number goes as is: the client refuses it)
    _calls = (
        ("observe", "", "series.observe(value)", _NON_NEGATIVE_FLOAT, "None"),
        ("time", None, "return series.time()", "", "_NO_TIMER"),
    )

    def __init__(
        self,
        name: str,
        help: str,
        *,
        tags: TagsDeclaration = (),
        buckets: Sequence[float] | None = None,
        timer: bool = True,
        prometheus_name: str | None = None,
        ttl_s: float | None = None,
        client: Any = None,
    ) -> None:
        if not timer:
            self.statsd_type = "h"
            self._calls = (
                ("observe", "", "series.observe(value)", _NON_NEGATIVE_FLOAT, "None"),
                ("time", None, "return series.time()", "", "_NO_TIMER"),
            )
        super().__init__(name, help, tags=tags, prometheus_name=prometheus_name, ttl_s=ttl_s, client=client)
        self.buckets = None if buckets is None else _check_buckets(name, buckets)

    def observe(self, value: float, /, **tags: object) -> None:
        """Record ``value`` (seconds for a timer) in the series of ``tags``."""
        self.labels(**tags).observe(value)

    def time(self, **tags: object) -> Any:
        """Context manager and decorator (sync or async): observes the seconds the block or call takes."""
        return self.labels(**tags).time()


class Summary(Histogram):
    """A summary with declared quantiles ``((quantile, allowed error), ...)``; otherwise a Histogram.

    >>> LAT = Summary("lookup_seconds", "Lookup time.", quantiles=((0.5, 0.05), (0.99, 0.001)))
    >>> LAT.quantiles
    ((0.5, 0.05), (0.99, 0.001))
    """

    kind = "summary"

    def __init__(
        self,
        name: str,
        help: str,
        *,
        tags: TagsDeclaration = (),
        quantiles: Sequence[tuple[float, float]] | None = None,
        timer: bool = True,
        prometheus_name: str | None = None,
        ttl_s: float | None = None,
        client: Any = None,
    ) -> None:
        super().__init__(
            name, help, tags=tags, timer=timer, prometheus_name=prometheus_name, ttl_s=ttl_s, client=client
        )
        self.quantiles = None if quantiles is None else _check_quantiles(name, quantiles)


def declared_in(module: Any) -> list[Metric]:
    """The declared metrics that are attributes of ``module`` (or of any object), in declaration order.

    >>> import types
    >>> m = types.SimpleNamespace(B=Counter("b_total", "B."), A=Gauge("a", "A."), x=1)
    >>> [metric.name for metric in declared_in(m)]
    ['b_total', 'a']
    """
    found = {id(v): v for v in vars(module).values() if isinstance(v, Metric)}
    return sorted(found.values(), key=lambda m: m.source)


# -- the calls with the declared tag keys as keyword parameters ---------------------------------------------

_MISSING: Any = object()
_NUMBERS = (float, int)
_CALL = """\
def {method}({value}*{params}, **_extra):
    if _extra:
        series = _given(_metric, _extra, {pairs})
    else:{fast}
        try:
            series = _series[{values}]
        except (KeyError, TypeError):
            series = _given(_metric, _extra, {pairs})
    if series is not None:
        {body}
    return {otherwise}
"""
# the common call, where the series has a lock-free list (a counter's increment by a non-negative int, a
# timer's observation): the values' one lookup in the metric's lists (emptied by the client when its settings
# generation changes: nothing else to check), one list.append; else the series' call, which remembers its list
_FAST = """
        try:
            values = _lists{lookup}
        except (KeyError, TypeError):
            pass
        else:
            if values and _here[0] and ({check}):
                values.append({item})
                return"""
_REMEMBER = """
        _remember(_metric, series, _namespace)"""


def _compile_calls(metric: Metric, calls: Iterable[tuple[Any, ...]]) -> None:
    """Give ``metric`` its own methods ``method(value, **tags)`` (``method(**tags)`` if the default is None)
    whose keyword parameters are the declared tag keys (generated code, as ``namedtuple``'s), so a call
    looks its series up by the values it was given, with no dict of tags; with a ``check`` of the values
    the series' lock-free list takes, a call of a series seen before is a dict lookup per key and one
    ``list.append`` (of the call's last field, an expression of ``value``, if it has one; else ``value``).
    ``calls`` as :attr:`Metric._calls`; they share one namespace (the lists and the fork flag they
    remember).

    Keys that cannot be parameters (Python keywords, ``value``, leading ``_``) keep the class's methods,
    which build the values from a dict of tags: the same result, a little slower.

    >>> DEPTH = Gauge("depth", "Depth.", tags=("queue",))
    >>> import inspect; str(inspect.signature(DEPTH.set))
    '(value, /, *, queue=<object ...>, **_extra)'
    """
    keys = metric.tag_keys
    if any(keyword.iskeyword(k) or k == "value" or k.startswith("_") for k in keys):
        return
    namespace = {
        "_metric": metric,
        "_series": metric._series,
        "_lists": metric._lists,
        "_here": None,  # the client's fork flag, set with the first list remembered (see _remember)
        "_given": _given,
        "_remember": _remember,
        "_MISSING": _MISSING,
        "_NO_SERIES": _NO_SERIES,
        "_NO_TIMER": _NO_TIMER,
    }
    namespace["_namespace"] = namespace
    for method, default, body, check, otherwise, *item in calls:
        source = _CALL.format(
            method=method,
            value="" if default is None else f"value{default}, /, ",
            otherwise=otherwise,
            body=body + (_REMEMBER if check else ""),
            fast=_FAST.format(
                lookup="".join(f"[{k}]" for k in keys) or "[()]",
                check=check,
                item=item[0] if item else "value",
            )
            if check
            else "",
            params="".join(f", {k}=_MISSING" for k in keys) if keys else "",
            pairs="(" + "".join(f"({k!r}, {k}), " for k in keys) + ")",
            values="(" + "".join(f"{k}, " for k in keys) + ")",
        ).replace("*, **_extra", "**_extra")
        exec(source, namespace)  # built only from checked tag keys (identifiers)
        call = namespace[method]
        call.__doc__ = getattr(type(metric), method).__doc__
        call.__qualname__ = f"{type(metric).__name__}.{method}"
        setattr(metric, method, call)


def _remember(metric: Metric, series: Any, namespace: dict) -> None:
    """After a generated call took the long way: keep ``series``' list for the next calls (and its client's
    fork flag), if the series is cached by str values and its list belongs to the client's generation."""
    fast, client = series.fast, metric.client
    generation = fast[0]
    if series.key is None or generation != client.settings_generation:
        return
    namespace["_here"] = fast[2]
    table, key = metric._lists, series.key
    for value in key[:-1]:
        table = table.setdefault(value, {})
    table[key[-1] if key else ()] = fast[1]
    if generation != client.settings_generation:  # changed meanwhile: the client may have emptied it before
        metric._lists.clear()


def _given(metric: Metric, extra: dict, pairs: tuple) -> Any:
    """The series of the tags a generated call was given (None if they are bad: rejected)."""
    tags = {k: v for k, v in pairs if v is not _MISSING}
    tags.update(extra)
    return metric._find(tags)


def _reject(client: Any, metric: str, kind: str, err: Exception) -> None:
    """A bad call: strict mode raises, production drops, counts and logs once (the client's policy)."""
    client.invalid_call(metric, kind, err)


# -- checks ------------------------------------------------------------------------------------------------


def _check_key(name: str, key: object) -> str:
    """A declared tag key: a label name as it is (``validation.label_name`` keeps it), not reserved."""
    if not isinstance(key, str) or not key or validation.label_name(key) != key:
        raise ValueError(
            f"{name}: tag key {key!r} is not a label name (letters, digits, _, not a leading digit)"
        )
    return validation.check_label(key)


def _value(key: str, value: object) -> str:
    """A tag value as sent (:func:`validation.tag_value`); never empty: a declared tag is always sent.

    >>> _value("step", " pay,ship ")
    'pay_ship'
    >>> _value("step", " ")
    Traceback (most recent call last):
    ...
    ValueError: tag 'step' has an empty value (every declared tag is sent)
    """
    text = validation.tag_value(value)
    if not text:
        raise ValueError(f"tag {key!r} has an empty value (every declared tag is sent)")
    return text


def _values(name: str, key: str, values: Iterable[object]) -> tuple:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise TypeError(f"{name}: the known values of tag {key!r} must be a sequence, got {values!r}")
    return tuple(values)


def _check_prometheus_name(name: str, prometheus_name: str | None) -> str:
    exported = name if prometheus_name is None else prometheus_name
    if not isinstance(exported, str) or not exported or not _is_prometheus_name(exported):
        field = "name" if prometheus_name is None else "prometheus_name"
        raise ValueError(
            f"{name}: {field} {exported!r} is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*); "
            "declare prometheus_name= for a dotted statsd name"
        )
    return exported


def _is_prometheus_name(text: str) -> bool:
    return (
        (text[0].isalpha() or text[0] in "_:")
        and all(c.isalnum() or c in "_:" for c in text)
        and text.isascii()
    )


def _check_buckets(name: str, buckets: Sequence[float]) -> tuple[float, ...]:
    try:
        values = tuple(float(b) for b in buckets)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: buckets must be numbers, got {buckets!r}") from None
    if not values or not all(math.isfinite(b) for b in values):
        raise ValueError(f"{name}: buckets must be finite numbers (+Inf is implied), got {buckets!r}")
    if any(b >= c for b, c in zip(values, values[1:])):
        raise ValueError(f"{name}: buckets must be sorted and distinct, got {buckets!r}")
    return tuple(int(b) if b.is_integer() else b for b in values)


def _check_quantiles(name: str, quantiles: Sequence[tuple[float, float]]) -> tuple:
    try:
        pairs = tuple((float(q), float(e)) for q, e in quantiles)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: quantiles must be (quantile, error) pairs, got {quantiles!r}") from None
    if not pairs or not all(0 < q < 1 and 0 <= e < 1 for q, e in pairs):
        raise ValueError(f"{name}: quantiles must be in (0, 1) with errors in [0, 1), got {quantiles!r}")
    return pairs


def _caller() -> tuple[str, int]:
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:  # pragma: no cover - always called from a declaration
        return ("<unknown>", 0)
    return (frame.f_code.co_filename, frame.f_lineno)
