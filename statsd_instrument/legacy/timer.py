"""The ``timer`` of the ``statsd`` package API: decorator, context manager and start/stop/send object.

Durations are measured with ``time.perf_counter`` and reported in milliseconds through the owning client's
``timing`` (so a timer made from a pipeline reports into the pipeline).
"""

from __future__ import annotations

import functools
import inspect
import time
from typing import Any, Callable

from statsd_instrument.validation import Tags


def _wraps(func: Callable) -> Callable:
    # functools.partial objects have no __name__: wrap the function they are built on
    inner = func
    while isinstance(inner, functools.partial):
        inner = inner.func
    return functools.wraps(inner)


class Timer:
    """Times a block, a function or a start/stop pair and sends ``stat:<ms>|ms``.

    >>> from statsd_instrument.legacy import StatsClient
    >>> pipe = StatsClient("127.0.0.1", 8125).pipeline()  # a pipeline keeps the lines until send()
    >>> timer = pipe.timer("export.run").start()
    >>> timer.stop(send=False).ms >= 0
    True
    >>> timer.send()
    >>> pipe._stats[0].startswith("export.run:")
    True
    >>> timer.send()
    Traceback (most recent call last):
    RuntimeError: Already sent data.
    """

    def __init__(self, client: Any, stat: str, rate: float = 1, tags: Tags = None) -> None:
        self.client = client
        self.stat = stat
        self.rate = rate
        self.tags = tags
        self.ms: float | None = None
        self._sent = False
        self._start_time: float | None = None

    def __call__(self, func: Callable) -> Callable:
        """Decorate ``func`` (sync or async): every call is timed, also when it raises."""
        if inspect.iscoroutinefunction(func):

            @_wraps(func)
            async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await func(*args, **kwargs)
                finally:
                    self._report(started)

            return timed_coroutine

        @_wraps(func)
        def timed_function(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self._report(started)

        return timed_function

    def _report(self, started: float) -> None:
        # the decorator keeps no state on self: one Timer may decorate a function called from many threads
        self.client.timing(self.stat, 1000.0 * (time.perf_counter() - started), self.rate, tags=self.tags)

    def __enter__(self) -> Timer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Timer:
        """Start (or restart) timing; returns the timer."""
        self.ms = None
        self._sent = False
        self._start_time = time.perf_counter()
        return self

    def stop(self, send: bool = True) -> Timer:
        """Stop timing, set ``ms``, and send unless ``send=False``; returns the timer."""
        if self._start_time is None:
            raise RuntimeError("Timer has not started.")
        self.ms = 1000.0 * (time.perf_counter() - self._start_time)
        if send:
            self.send()
        return self

    def send(self) -> None:
        """Send the measured ``ms`` once (after ``stop(send=False)``)."""
        if self.ms is None:
            raise RuntimeError("No data recorded.")
        if self._sent:
            raise RuntimeError("Already sent data.")
        self._sent = True
        self.client.timing(self.stat, self.ms, self.rate, tags=self.tags)
