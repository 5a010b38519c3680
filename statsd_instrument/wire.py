"""The DogStatsD line format: number, duration and sample-rate formatting.

A line is ``name:value|type[|@rate][|#k:v,k2:v2]``. What names and tags may be, and how tags are written,
is owned by :mod:`statsd_instrument.validation`; this module formats the values.

>>> format_ms(12.3456789), format_ms(0.0004), format_ms(1500.0)
('12.346', '0', '1500')
"""

from __future__ import annotations

import math

__all__ = ["format_ms", "format_ms_of", "format_number", "format_numbers", "sample_rate_suffix"]


def format_number(value: object) -> str:
    """A finite int or float as the exporter parses it; anything else raises ValueError.

    >>> format_number(3), format_number(2.50), format_number(1e-7)
    ('3', '2.5', '1e-07')
    """
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        number = float(value)  # type: ignore[arg-type]
        if not math.isfinite(number):
            raise ValueError(f"value {value!r} is not a finite number")
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        return repr(number)
    raise ValueError(f"value {value!r} is not a number")


def format_ms(value: object) -> str:
    """Milliseconds with microsecond precision, trailing zeros dropped (``12.345``, ``0.001``, ``1500``).

    >>> format_ms(2), format_ms(-0.0001)
    ('2', '0')
    """
    if type(value) is float:
        text = f"{value:.3f}".rstrip("0").rstrip(".")
        if "n" not in text and text != "-0":  # the common case: not inf or nan ("inf", "nan"), not -0
            return text
    elif type(value) is int:
        return str(value)
    else:
        format_number(value)  # raises for non-numbers
        value = float(value)  # type: ignore[arg-type]
    if not math.isfinite(value):
        raise ValueError(f"value {value!r} is not a finite number")
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_numbers(values: list) -> list:
    """:func:`format_number` of many values; ``""`` for one that is not a finite number (the caller counts
    it as dropped).

    >>> format_numbers([512, 2.50, -1e-7, float("inf")])
    ['512', '2.5', '-1e-07', '']
    """
    texts = []
    for value in values:
        try:
            texts.append(format_number(value))
        except ValueError:
            texts.append("")
    return texts


def sample_rate_suffix(rate: float | None) -> str:
    """The ``|@rate`` suffix ('' for None or 1); raise ValueError outside (0, 1].

    >>> sample_rate_suffix(0.25), sample_rate_suffix(1)
    ('|@0.25', '')
    """
    if rate is None or rate == 1:
        return ""
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 < rate < 1:
        raise ValueError(f"sample_rate={rate!r}: expected a number in (0, 1]")
    return f"|@{rate:g}"


def format_ms_of(values: list, scale: float = 1000.0) -> list:
    """``format_ms(value * scale)`` of many values formatted in one go (about a third of the cost per value:
    one C-level ``%`` and four ``str.replace`` passes for the trailing zeros): durations in seconds with the
    default ``scale``, in milliseconds with ``1.0``. A value that is negative, infinite or not a number gives
    ``""`` (the caller counts it as dropped).

    >>> format_ms_of([0.0123456789, 0.0000004, 1.5, 0.0, 0.1, 10.0, -0.001, float("nan")])
    ['12.346', '0', '1500', '0', '100', '10000', '', '']
    >>> format_ms_of([12.3456789, 250.0], 1.0)
    ['12.346', '250']
    """
    if not values:
        return []
    numbers = tuple(values) if scale == 1.0 else tuple([value * scale for value in values])
    text = ("%.3f:" * len(numbers)) % numbers
    # every value has exactly three decimals: three passes drop their trailing zeros, one a bare point
    text = text.replace("0:", ":").replace("0:", ":").replace("0:", ":").replace(".:", ":")
    texts = text[:-1].split(":")
    if "n" in text or "-" in text:  # inf, nan or a negative value: those alone are left out
        texts = [value if value[:1] not in "-in" else "" for value in texts]
    return texts
