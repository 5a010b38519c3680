"""``timed`` and ``counted`` (decorators for sync and async functions, and context managers), and
``instrument`` / ``uninstrument`` to wrap functions and methods of code you don't own, sending with the
module-level ``statsd`` unless given a ``client`` (the measuring itself is :mod:`statsd_instrument.measure`).

The package re-exports these functions, so ``statsd_instrument.instrument`` is the function: this module has
another name than the function it holds.

Units, outcome tags and re-raising are :mod:`statsd_instrument.measure`'s (float ms on the wire, seconds in
Prometheus).

>>> from statsd_instrument import statsd
>>> @counted("checkout_total", outcome=True)
... def checkout(amount):
...     '''Charge the customer.'''
...     return amount
>>> with statsd.capture_lines() as lines:
...     checkout(3)
3
>>> lines, checkout.__doc__
(['checkout_total:1|c|#outcome:success,exception:none'], 'Charge the customer.')
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from statsd_instrument.client import statsd
from statsd_instrument.measure import Counted, Timed
from statsd_instrument.validation import Tags

__all__ = ["counted", "instrument", "timed", "uninstrument"]

_ORIGINAL = "__statsd_instrument_original__"


def _or_default(client: Any) -> Any:
    # the module-level statsd is one object for the life of the process (configure() changes it in place)
    return client if client is not None else statsd


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
    ('index', 'statsd_instrument.instrumentation.index')

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
    return Timed.of(metric, tags, sample_rate, outcome=outcome, client=_or_default(client), use_ms=use_ms)


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
    return Counted.of(metric, tags, sample_rate, outcome=outcome, client=_or_default(client))


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
        metric, tags, sample_rate, outcome=outcome, client=_or_default(client)
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
