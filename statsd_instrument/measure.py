"""The measuring objects behind ``timed``, ``counted`` and ``distributed``: :class:`Timed`, :class:`Counted`,
:class:`Distributed`, each a decorator (sync, async, generator) and a context manager that sends through the
client it is given.

The client builds its ``timed``/``distributed`` methods on these, and :mod:`statsd_instrument.instrumentation`
its ``timed``/``counted``/``instrument`` functions with the module-level ``statsd``; this module imports
neither, so the three stay apart without imports inside functions.

Durations are measured with ``time.perf_counter()`` and sent as float milliseconds (``|ms``); the
exporter divides by 1000 and exports seconds. With ``outcome=True`` a call is tagged ``outcome:success``
and ``exception:none``, or ``outcome:failure`` and ``exception:<ExceptionClass>`` (the same tag keys either
way: a Prometheus metric keeps one label set). Exceptions are always re-raised unchanged.

>>> from statsd_instrument import statsd
>>> @Timed("checkout_seconds", tags={"step": "pay"}, client=statsd)
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

from statsd_instrument.validation import Tags

_perf_counter = time.perf_counter
_get_ident = threading.get_ident


def _with_outcome(tags: Tags, outcome: str, exception: str) -> Any:
    extra = {"outcome": outcome, "exception": exception}
    if tags is None:
        return extra
    if isinstance(tags, dict):
        return {**tags, **extra}
    return [*tags, *(f"{k}:{v}" for k, v in extra.items())]


@contextlib.contextmanager
def _measuring(begin: Callable[[], float] | None, record: Callable, metric: str) -> Iterator[None]:
    """Time the block and ``record(metric, start, error)`` at its end (generators; plain and async functions
    inline the same steps: they are on request paths); ``begin`` as in ``_Measure.__call__``."""
    start = _perf_counter() if begin is None else begin()
    try:
        yield
    except BaseException as error:
        record(metric, start, error)
        raise
    record(metric, start, None)


class _Measure:
    """Shared machinery of :class:`Timed`, :class:`Distributed` and :class:`Counted`: decorator, context
    manager, outcome tags, and datadog's ``use_ms`` / ``elapsed`` (None: the client's ``use_ms``)."""

    #: whether ``_record`` sends through ``client`` (then a client must be given)
    _sends = False
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
        if client is None and self._sends:
            raise TypeError(f"{type(self).__name__} needs the client to send through (client=...)")
        self.client = client
        self._ok_tags = _with_outcome(tags, "success", "none") if outcome else tags
        # thread id -> the start times of the blocks it is in (one object may time blocks in several threads,
        # and nested ones); a thread touches only its own entry (no lock), removed when its last block ends
        self._starts: dict[int, list[float]] = {}

    @classmethod
    def of(cls, metric: Any, *args: Any, **kwargs: Any) -> Any:
        """``cls(metric, ...)``; for a bare decorator (``metric`` is the function) the wrapped function.

        >>> from statsd_instrument import statsd
        >>> def index():
        ...     return "ok"
        >>> Timed.of(index, client=statsd).__name__, type(Timed.of("index_seconds", client=statsd)).__name__
        ('index', 'Timed')
        """
        if metric.__class__ is not str and (
            callable(metric) or isinstance(metric, (staticmethod, classmethod))
        ):
            return cls(None, *args, **kwargs)(metric)
        return cls(metric, *args, **kwargs)

    def _tags_for(self, error: BaseException | None) -> Tags:
        if not self.outcome:
            return self.tags
        if error is None:
            return self._ok_tags
        return _with_outcome(self.tags, "failure", type(error).__name__)

    def _record(self, metric: str | None, start: float, error: BaseException | None) -> None:
        raise NotImplementedError

    def _begin(self) -> float:
        """What a block or call does first: the start time ``_record`` gets (a subclass may do more)."""
        return _perf_counter()

    def __enter__(self) -> _Measure:
        if not self.metric:
            raise TypeError(f"{type(self).__name__} as a context manager needs a metric name")
        thread = _get_ident()
        stack = self._starts.get(thread)
        if stack is None:
            self._starts[thread] = [self._begin()]
        else:
            stack.append(self._begin())
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        thread = _get_ident()
        stack = self._starts[thread]
        start = stack.pop()
        if not stack:
            del self._starts[thread]
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
        # what a call does first: None for the start time alone (perf_counter, read when called, no frame)
        begin = None if type(self)._begin is _Measure._begin else self._begin
        if inspect.isasyncgenfunction(func):

            @functools.wraps(func)
            async def async_gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                with _measuring(begin, record, metric):
                    async for item in func(*args, **kwargs):
                        yield item

            return async_gen_wrapper
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                start = _perf_counter() if begin is None else begin()
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
                with _measuring(begin, record, metric):
                    return (yield from func(*args, **kwargs))

            return gen_wrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = _perf_counter() if begin is None else begin()
            try:
                result = func(*args, **kwargs)
            except BaseException as error:
                record(metric, start, error)
                raise
            record(metric, start, None)
            return result

        return wrapper


class Timed(_Measure):
    """Times a call or a block (float ms); see :func:`statsd_instrument.timed`.

    >>> from statsd_instrument import statsd
    >>> with statsd.capture_lines() as lines:
    ...     with Timed("block_seconds", client=statsd):
    ...         pass
    >>> lines[0].split(":")[0]
    'block_seconds'
    """

    _sends = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # metric -> (generation, list, here, first): the timer series' list of durations in the client's
        # buffer (Client.timer_list; list None: none in that generation), for timers whose tags and rate
        # never change; None for the others
        self._lists: dict | None = (
            {}
            if not self.outcome and self.sample_rate in (None, 1) and hasattr(self.client, "timer_list")
            else None
        )

    def _record(self, metric: str | None, start: float, error: BaseException | None) -> None:
        elapsed_s = _perf_counter() - start
        client = self.client
        lists = self._lists
        if lists is not None:
            fast = lists.get(metric)
            if fast is None or fast[0] != client.settings_generation:
                client.timing(metric, elapsed_s * 1000.0, self.tags)
                lists[metric] = client.timer_list(metric, self.tags)  # the next calls append, if they can
            elif fast[1] is None:  # no list in this generation: the client's call
                client.timing(metric, elapsed_s * 1000.0, self.tags)
            else:  # one append of the seconds (sent as ms, formatted as timing() would), as Client.timing
                values = fast[1]
                if values and fast[2][0]:
                    values.append(elapsed_s)
                else:
                    fast[3](values, elapsed_s)
        else:
            client.timing(metric, elapsed_s * 1000.0, self._tags_for(error), self.sample_rate)
        use_ms = self.use_ms if self.use_ms is not None else getattr(client, "use_ms", False)
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

    _sends = True

    def _record(self, metric: str | None, start: float, error: BaseException | None) -> None:
        elapsed_s = _perf_counter() - start
        value = round(elapsed_s * 1000.0, 3) if self.use_ms else round(elapsed_s, 6)
        self.client.distribution(metric, value, self._tags_for(error), self.sample_rate)
        self.elapsed = value


class Counted(_Measure):
    """Counts calls or blocks (when they end, so the outcome is known); see :func:`statsd_instrument.counted`.

    >>> from statsd_instrument import statsd
    >>> with statsd.capture_lines() as lines:
    ...     with Counted("jobs_total", outcome=True, client=statsd):
    ...         pass
    >>> lines
    ['jobs_total:1|c|#outcome:success,exception:none']
    """

    _sends = True

    def _record(self, metric: str | None, start: float, error: BaseException | None) -> None:
        self.client.increment(metric, 1, self._tags_for(error), self.sample_rate)
