"""``timed`` and ``counted`` (decorators for sync and async functions, and context managers), and
``instrument`` / ``uninstrument`` to wrap functions and methods of code you don't own.

Durations are measured with ``time.perf_counter()`` and sent as float milliseconds (``|ms``); the
exporter divides by 1000 and exports seconds. With ``outcome=True`` a call is tagged ``outcome:success``
and ``exception:none``, or ``outcome:failure`` and ``exception:<ExceptionClass>`` (the same tag keys either
way: a Prometheus metric keeps one label set). Exceptions are always re-raised unchanged.

>>> from statsd_instrument import statsd
>>> @timed("checkout_seconds", tags={"step": "pay"})
... def checkout(amount):
...     '''Charge the customer.'''
...     return amount
>>> with statsd.capture_lines() as lines:
...     checkout(3)
3
>>> lines[0].startswith("checkout_seconds:"), lines[0].endswith("|ms|#step:pay"), checkout.__doc__
(True, True, 'Charge the customer.')
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
import time
from typing import Any, Callable, Iterator

from statsd_instrument.wire import Tags

_perf_counter = time.perf_counter
_ORIGINAL = "__statsd_instrument_original__"


def _with_outcome(tags: Tags, outcome: str, exception: str) -> Any:
    extra = {"outcome": outcome, "exception": exception}
    if tags is None:
        return extra
    if isinstance(tags, dict):
        return {**tags, **extra}
    return [*tags, *(f"{k}:{v}" for k, v in extra.items())]


@contextlib.contextmanager
def _measuring(record: Callable, metric: str) -> Iterator[None]:
    """Time the block and ``record(metric, start, error)`` at its end (generators; plain and async functions
    inline the same steps: they are on request paths)."""
    start = _perf_counter()
    try:
        yield
    except BaseException as error:
        record(metric, start, error)
        raise
    record(metric, start, None)


class _Measure:
    """Shared machinery of :class:`Timed`, :class:`Distributed` and :class:`Counted`: decorator, context
    manager, outcome tags, and datadog's ``use_ms`` / ``elapsed`` (None: the client's ``use_ms``)."""

    #: the last measured duration, in datadog's unit: seconds, or whole milliseconds with ``use_ms``
    #: (what ``timed`` sends is float milliseconds either way)
    elapsed: float | None = None

    def __init__(
        self,
        metric: str | None,
        tags: Tags = None,
        sample_rate: float | None = None,
        *,
        outcome: bool = False,
        client: Any = None,
        use_ms: bool | None = None,
    ) -> None:
        self.use_ms = use_ms
        self.metric = metric
        self.tags = tags
        self.sample_rate = sample_rate
        self.outcome = outcome
        self._client = client
        self._ok_tags = _with_outcome(tags, "success", "none") if outcome else tags
        self._local = threading.local()

    @property
    def client(self) -> Any:
        """The client used: the one given, else the module-level ``statsd`` (looked up at each use)."""
        if self._client is not None:
            return self._client
        from statsd_instrument.client import statsd

        return statsd

    def _tags_for(self, error: BaseException | None) -> Tags:
        if not self.outcome:
            return self.tags
        if error is None:
            return self._ok_tags
        return _with_outcome(self.tags, "failure", type(error).__name__)

    def _record(self, metric: str | None, start: float, error: BaseException | None) -> None:
        raise NotImplementedError

    def __enter__(self) -> _Measure:
        if not self.metric:
            raise TypeError(f"{type(self).__name__} as a context manager needs a metric name")
        stack = getattr(self._local, "starts", None)
        if stack is None:
            stack = self._local.starts = []
        stack.append(_perf_counter())
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        start = self._local.starts.pop()
        self._record(self.metric, start, exc)

    def start(self) -> None:
        """Start measuring (datadog's ``timed(...).start()``); pair it with :meth:`stop`."""
        self.__enter__()

    def stop(self) -> None:
        """Stop measuring and send (datadog's ``timed(...).stop()``)."""
        self.__exit__(None, None, None)

    def __call__(self, func: Callable) -> Callable:
        """Wrap ``func``: a plain, async, generator or async generator function (a generator is measured
        from its first to its last item), or a ``staticmethod``/``classmethod`` object. Without a metric
        name the metric is ``<module>.<function name>``, as datadog names it."""
        if isinstance(func, (staticmethod, classmethod)):
            return type(func)(self(func.__func__))
        metric = self.metric or f"{func.__module__}.{func.__name__}"
        record = self._record
        if inspect.isasyncgenfunction(func):

            @functools.wraps(func)
            async def async_gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                with _measuring(record, metric):
                    async for item in func(*args, **kwargs):
                        yield item

            return async_gen_wrapper
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                start = _perf_counter()
                try:
                    result = await func(*args, **kwargs)
                except BaseException as error:
                    record(metric, start, error)
                    raise
                record(metric, start, None)
                return result

            return async_wrapper
        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                with _measuring(record, metric):
                    return (yield from func(*args, **kwargs))

            return gen_wrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = _perf_counter()
            try:
                result = func(*args, **kwargs)
            except BaseException as error:
                record(metric, start, error)
                raise
            record(metric, start, None)
            return result

        return wrapper


class Timed(_Measure):
    """Times a call or a block (float ms); see :func:`timed`.

    >>> from statsd_instrument import statsd
    >>> with statsd.capture_lines() as lines:
    ...     with Timed("block_seconds", client=statsd):
    ...         pass
    >>> lines[0].split(":")[0]
    'block_seconds'
    """

    def _record(self, metric: str | None, start: float, error: BaseException | None) -> None:
        elapsed_s = _perf_counter() - start
        self.client.timing(metric, elapsed_s * 1000.0, self._tags_for(error), self.sample_rate)
        use_ms = self.use_ms if self.use_ms is not None else getattr(self.client, "use_ms", False)
        self.elapsed = round(elapsed_s * 1000.0) if use_ms else elapsed_s


class Distributed(_Measure):
    """Times a call or a block and sends a distribution (``|d``): seconds, or ms with ``use_ms=True``.

    ``statsd.distributed(...)`` (datadog's call) returns one. The exporter leaves ``|d`` values as sent, so
    seconds arrive in Prometheus as seconds. Microsecond precision either way.

    >>> from statsd_instrument import statsd
    >>> with statsd.capture_lines() as lines:
    ...     with Distributed("batch_seconds", client=statsd):
    ...         pass
    >>> lines[0].split(":")[0], lines[0].endswith("|d")
    ('batch_seconds', True)
    """

    def _record(self, metric: str | None, start: float, error: BaseException | None) -> None:
        elapsed_s = _perf_counter() - start
        value = round(elapsed_s * 1000.0, 3) if self.use_ms else round(elapsed_s, 6)
        self.client.distribution(metric, value, self._tags_for(error), self.sample_rate)
        self.elapsed = value


class Counted(_Measure):
    """Counts calls or blocks (when they end, so the outcome is known); see :func:`counted`.

    >>> from statsd_instrument import statsd
    >>> with statsd.capture_lines() as lines:
    ...     with Counted("jobs_total", outcome=True):
    ...         pass
    >>> lines
    ['jobs_total:1|c|#outcome:success,exception:none']
    """

    def _record(self, metric: str | None, start: float, error: BaseException | None) -> None:
        self.client.increment(metric, 1, self._tags_for(error), self.sample_rate)


def timed(
    metric: str | Callable | None = None,
    tags: Tags = None,
    sample_rate: float | None = None,
    *,
    outcome: bool = False,
    client: Any = None,
    use_ms: bool | None = None,
) -> Any:
    """Time a function (sync, async or generator) or a ``with`` block with the module-level ``statsd``.

    ``@timed`` (bare), ``@timed()`` and ``@timed("name")`` all decorate; without a name the metric is
    ``<module>.<function name>`` (datadog's naming). ``use_ms`` only sets the unit of :attr:`Timed.elapsed`.

    >>> from statsd_instrument import statsd
    >>> @timed
    ... def index():
    ...     return "ok"
    >>> with statsd.capture_lines() as lines:
    ...     index()
    'ok'
    >>> index.__name__, lines[0].split(":")[0]
    ('index', 'statsd_instrument.instrument.index')

    >>> from statsd_instrument import statsd
    >>> @timed("fetch_seconds")
    ... async def fetch():
    ...     return 1
    >>> import asyncio
    >>> with statsd.capture_lines() as lines:
    ...     asyncio.run(fetch())
    1
    >>> lines[0].startswith("fetch_seconds:")
    True
    """
    if callable(metric) or isinstance(metric, (staticmethod, classmethod)):  # bare @timed
        return Timed(None, tags, sample_rate, outcome=outcome, client=client, use_ms=use_ms)(metric)
    return Timed(metric, tags, sample_rate, outcome=outcome, client=client, use_ms=use_ms)


def counted(
    metric: str | Callable | None = None,
    tags: Tags = None,
    sample_rate: float | None = None,
    *,
    outcome: bool = False,
    client: Any = None,
) -> Any:
    """Count calls of a function (sync or async) or runs of a ``with`` block.

    >>> from statsd_instrument import statsd
    >>> @counted("parse_total", outcome=True)
    ... def parse(text):
    ...     return int(text)
    >>> with statsd.capture_lines() as lines:
    ...     try:
    ...         parse("x")
    ...     except ValueError:
    ...         pass
    >>> lines
    ['parse_total:1|c|#outcome:failure,exception:ValueError']
    """
    if callable(metric) or isinstance(metric, (staticmethod, classmethod)):  # bare @counted
        return Counted(None, tags, sample_rate, outcome=outcome, client=client)(metric)
    return Counted(metric, tags, sample_rate, outcome=outcome, client=client)


def instrument(
    target: Any,
    attribute: str,
    metric: str | None = None,
    *,
    kind: str = "timed",
    tags: Tags = None,
    sample_rate: float | None = None,
    outcome: bool = False,
    client: Any = None,
) -> Callable:
    """Replace ``target.attribute`` (a function of a module, or a method, classmethod or staticmethod of
    a class) by a timed (``kind="timed"``) or counted (``kind="counted"``) wrapper; returns the wrapper.

    The wrapper keeps the signature and docstring; :func:`uninstrument` restores the original.

    >>> import json
    >>> from statsd_instrument import statsd
    >>> _ = instrument(json, "dumps", "json_dumps_total", kind="counted")
    >>> with statsd.capture_lines() as lines:
    ...     json.dumps([1])
    '[1]'
    >>> lines
    ['json_dumps_total:1|c']
    >>> uninstrument(json, "dumps")
    >>> hasattr(json.dumps, "__wrapped__")
    False
    """
    if kind not in ("timed", "counted"):
        raise ValueError(f"kind={kind!r}: expected 'timed' or 'counted'")
    raw = inspect.getattr_static(target, attribute)
    if getattr(raw, _ORIGINAL, None) is not None or getattr(getattr(raw, "__func__", None), _ORIGINAL, None):
        raise ValueError(f"{target!r}.{attribute} is already instrumented")
    descriptor = type(raw) if isinstance(raw, (staticmethod, classmethod)) else None
    func = raw.__func__ if descriptor else getattr(target, attribute)
    if not callable(func):
        raise ValueError(f"{target!r}.{attribute} is not callable")
    if metric is None:
        metric = f"{getattr(func, '__module__', None) or 'unknown'}.{func.__qualname__}".replace(
            "<", ""
        ).replace(">", "")
    measure = (Timed if kind == "timed" else Counted)(
        metric, tags, sample_rate, outcome=outcome, client=client
    )
    wrapper = measure(func)
    # remember whether target itself held the attribute (not a base class), to restore exactly that
    owned = attribute in getattr(target, "__dict__", {})
    setattr(wrapper, _ORIGINAL, (raw, owned))
    setattr(target, attribute, descriptor(wrapper) if descriptor else wrapper)
    return wrapper


def uninstrument(target: Any, attribute: str) -> None:
    """Undo :func:`instrument` on ``target.attribute``; a ValueError if it is not instrumented.

    >>> class Repo:
    ...     def get(self):
    ...         return 1
    >>> _ = instrument(Repo, "get", "repo_get_seconds")
    >>> uninstrument(Repo, "get")
    >>> Repo.__dict__["get"].__name__, hasattr(Repo.get, "__wrapped__")
    ('get', False)
    """
    raw = inspect.getattr_static(target, attribute)
    inner = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
    saved = getattr(inner, _ORIGINAL, None)
    if saved is None:
        raise ValueError(f"{target!r}.{attribute} is not instrumented")
    original, owned = saved
    if owned:
        setattr(target, attribute, original)
    else:  # it came from a base class: remove the wrapper and let lookup find the base's again
        delattr(target, attribute)
