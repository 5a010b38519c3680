"""The DogStatsD line format: name and tag checks, tag value normalisation, number formatting.

A line is ``name:value|type[|@rate][|#k:v,k2:v2]``. statsd_exporter splits tags on ``,`` and each tag at its
first ``:``, does not trim, and turns tags into Prometheus labels; so:

* names match ``[A-Za-z_][A-Za-z0-9_.-]*`` (dots and dashes are what mapping rules match on);
* tag keys are Prometheus label names ``[A-Za-z_][A-Za-z0-9_]*``, and never ``le``, ``quantile`` or
  ``__*`` (they crash the exporter or break every later scrape);
* tag values have ``,`` ``|`` ``#`` and control characters (newline...) replaced by ``_`` and surrounding
  spaces stripped, so no value can split or break a line.

Checks of names and keys are cached per distinct string: each is validated once per process.

>>> format_tags(["status:paid", "endpoint: /x,y "])
'|#status:paid,endpoint:/x_y'
>>> format_ms(12.3456789), format_ms(0.0004), format_ms(1500.0)
('12.346', '0', '1500')
"""

from __future__ import annotations

import math
import re
from typing import Mapping, Sequence, Union

Tags = Union[Sequence[str], Mapping[str, object], None]

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BAD_VALUE_CHARS = re.compile(r"[,|#\x00-\x1f\x7f]")
RESERVED_KEYS = frozenset({"le", "quantile"})
MAX_NAME_LEN = 200
MAX_CACHE = 10_000

_good_names: set = set()
_good_keys: set = set()


def check_name(name: object) -> str:
    """Return ``name`` if statsd_exporter and Prometheus accept it as a metric name, else raise ValueError.

    >>> check_name("http.requests-total")
    'http.requests-total'
    >>> check_name("orders total")
    Traceback (most recent call last):
    ...
    ValueError: invalid metric name 'orders total': use letters, digits, '_', '.', '-', not a leading digit
    """
    if name in _good_names:
        return name  # type: ignore[return-value]
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > MAX_NAME_LEN:
        raise ValueError(
            f"invalid metric name {name!r}: use letters, digits, '_', '.', '-', not a leading digit"
            if isinstance(name, str) and len(name) <= MAX_NAME_LEN
            else f"invalid metric name {name!r}: expected a str of at most {MAX_NAME_LEN} characters"
        )
    if len(_good_names) < MAX_CACHE:
        _good_names.add(name)
    return name


def check_key(key: object) -> str:
    """Return ``key`` if it is a usable tag key (a Prometheus label name, not reserved); else ValueError.

    >>> check_key("status")
    'status'
    >>> check_key("le")
    Traceback (most recent call last):
    ...
    ValueError: reserved tag key 'le': statsd_exporter uses it for histogram buckets
    """
    if key in _good_keys:
        return key  # type: ignore[return-value]
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise ValueError(f"invalid tag key {key!r}: use letters, digits and '_', not starting with a digit")
    if key == "le":
        raise ValueError(f"reserved tag key {key!r}: statsd_exporter uses it for histogram buckets")
    if key == "quantile":
        raise ValueError(f"reserved tag key {key!r}: statsd_exporter uses it for summary quantiles")
    if key.startswith("__"):
        raise ValueError(f"reserved tag key {key!r}: keys starting with '__' are reserved by Prometheus")
    if len(_good_keys) < MAX_CACHE:
        _good_keys.add(key)
    return key


def normalise_value(value: object) -> str:
    """A tag value that cannot break a line: ``,|#`` and control characters become ``_``; spaces stripped.

    >>> normalise_value(" a,b|c#d\\ne ")
    'a_b_c_d_e'
    >>> normalise_value(3.5)
    '3.5'
    """
    text = value if isinstance(value, str) else str(value)
    return _BAD_VALUE_CHARS.sub("_", text).strip()


def normalise_tag(tag: object) -> str:
    """``"key:value"`` with a checked key and a normalised value (split at the first ``:``).

    >>> normalise_tag("endpoint: /user/<id>")
    'endpoint:/user/<id>'
    >>> normalise_tag("production")
    Traceback (most recent call last):
    ...
    ValueError: tag 'production' has no ':' (expected 'key:value')
    """
    if not isinstance(tag, str):
        raise ValueError(f"tag {tag!r} is not a 'key:value' str")
    key, sep, value = tag.partition(":")
    if not sep:
        raise ValueError(f"tag {tag!r} has no ':' (expected 'key:value')")
    return f"{check_key(key.strip())}:{normalise_value(value)}"


def tag_pairs(tags: Tags) -> list:
    """[(key, normalised value), ...] of a tag list (``"k:v"`` strings) or mapping; keys checked.

    >>> tag_pairs({"status": 200, "method": " GET"})
    [('status', '200'), ('method', 'GET')]
    """
    if not tags:
        return []
    if isinstance(tags, Mapping):
        return [(check_key(k), normalise_value(v)) for k, v in tags.items()]
    if isinstance(tags, str):
        raise ValueError(f"tags={tags!r}: expected a list of 'key:value' strings or a dict, not a str")
    return [tuple(normalise_tag(t).split(":", 1)) for t in tags]


def format_tags(tags: Tags, constant: Sequence[str] = ()) -> str:
    """The ``|#...`` suffix of a line ('' without tags); a later tag with the same key replaces an earlier
    one, and call tags override constant tags.

    >>> format_tags({"env": "dev"}, constant=("env:prod", "region:eu"))
    '|#env:dev,region:eu'
    """
    merged: dict = {}
    for tag in constant:
        key, _, value = tag.partition(":")
        merged[key] = value
    for key, value in tag_pairs(tags):
        merged[key] = value
    if not merged:
        return ""
    return "|#" + ",".join(f"{k}:{v}" for k, v in merged.items())


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

    >>> format_ms(2)
    '2'
    """
    if type(value) is not float:
        if type(value) is int:
            return str(value)
        format_number(value)  # raises for non-numbers
        value = float(value)  # type: ignore[arg-type]
    elif not math.isfinite(value):
        raise ValueError(f"value {value!r} is not a finite number")
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def parse_sample_rate(rate: float | None) -> str:
    """The ``|@rate`` suffix ('' for None or 1); raise ValueError outside (0, 1].

    >>> parse_sample_rate(0.25), parse_sample_rate(1)
    ('|@0.25', '')
    """
    if rate is None or rate == 1:
        return ""
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 < rate < 1:
        raise ValueError(f"sample_rate={rate!r}: expected a number in (0, 1]")
    return f"|@{rate:g}"
