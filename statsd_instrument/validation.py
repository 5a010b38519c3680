"""The one owner of every input rule: tag keys and values, metric names, host:port, booleans, durations.

Every caller (the client, the request metrics, the legacy clients, the datadog compatibility layer, the
configuration, the exporter's command line) checks through these functions; nothing else holds a copy.
What a valid name *means* to the exporter (one of its own metrics, a second type for a name, a collision
with a histogram's ``_sum``/``_count``/``_bucket``) is :mod:`statsd_instrument.guard`'s, checked after
:func:`check_name` once per name and type.

**Tags** (``["k:v", ...]`` or ``{"k": v}``), as statsd_exporter v0.28.0 reads them: it splits the ``|#``
field on ``,``, strips one leading ``#`` of each tag, splits a tag at its first ``:`` and escapes the key
into a label name (every character outside ``[A-Za-z0-9_]`` becomes ``_``, a run of ``-`` counts as one,
a leading digit gets a ``_`` in front). So, here:

* a key is escaped client-side to exactly the label name the exporter would make of it
  (``availability-zone`` -> ``availability_zone``, ``queue.kind`` -> ``queue_kind``, ``1st`` -> ``_1st``,
  ``x`` stays ``x``: one character is a valid label name); surrounding spaces are stripped first;
* a value keeps its text except the characters that would corrupt the line or be split by the exporter:
  ``,`` ``|`` ``#`` and every control character (tab, newline, ``\\x00``-``\\x1f``, ``\\x7f``) become ``_``;
  surrounding whitespace is stripped first (the exporter does not trim: it would end up in the label);
* a bare tag (``vip``, or a ``None`` value in a dict), an empty value (``kind:``) and an empty key (``:x``)
  are **not sent** (the exporter would only count a tag error and drop the label); the metric is kept and
  the drop is reported to the caller's :class:`TagPolicy` with its reason (:data:`DROP_REASONS`), which
  counts it, and in strict mode also warns with :class:`DroppedTagWarning`;
* keys whose label name is ``le``, ``quantile`` or starts with ``__`` are **refused** (``ValueError``):
  they crash the exporter or poison every later scrape; so is anything that is not a list or dict of tags;
* a later tag with the same label name replaces an earlier one (the exporter keeps the last).

>>> tag_text(["availability-zone:eu-1a", "queue.kind: mail", "vip", "kind:", "path:/a,b|c"])
TagText(text='availability_zone:eu-1a,queue_kind:mail,path:/a_b_c', drops=('bare_tag', 'empty_value'))
>>> format_tags({"env": "dev"}, TagPolicy(strict=False), constant=("env:prod", "region:eu"))
'|#env:dev,region:eu'
"""

from __future__ import annotations

import math
import os
import re
import sys
import warnings
from types import FrameType
from typing import Collection, Mapping, NamedTuple, Sequence, Union

Tags = Union[Sequence[str], Mapping[str, object], None]

#: why a tag was not sent (the metric still was)
DROP_REASONS = ("bare_tag", "empty_value", "empty_key")
RESERVED_KEYS = frozenset({"le", "quantile"})
MAX_NAME_LEN = 200
#: bound of the per-process caches of checked names
MAX_CACHE = 10_000

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_LABEL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_DASH_RUN = re.compile(r"--+")
_NOT_LABEL_CHAR = re.compile(r"[^A-Za-z0-9_]")
_BAD_VALUE_CHARS = re.compile(r"[,|#\x00-\x1f\x7f]")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class DroppedTagWarning(UserWarning):
    """Strict mode: a tag was not sent (bare, empty value or empty key); the metric was."""


# -- tags --------------------------------------------------------------------------------------------------


def label_name(key: str) -> str:
    """The Prometheus label name statsd_exporter v0.28.0 makes of a DogStatsD tag key (no reserved check).

    >>> label_name("availability-zone"), label_name("queue.kind"), label_name("a--b"), label_name("9x")
    ('availability_zone', 'queue_kind', 'a_b', '_9x')
    >>> label_name("#env"), label_name("x")
    ('env', 'x')
    """
    if key[:1] == "#":
        key = key[1:]
    if _LABEL_RE.match(key):
        return key
    name = _NOT_LABEL_CHAR.sub("_", _DASH_RUN.sub("-", key))
    return "_" + name if key[:1] in "0123456789" and key else name


def check_label(name: str) -> str:
    """``name`` (a label name) unless the exporter reserves it; else ``ValueError`` saying why.

    >>> check_label("le")
    Traceback (most recent call last):
    ...
    ValueError: reserved tag key 'le': statsd_exporter uses it for histogram buckets
    """
    if name == "le":
        raise ValueError(f"reserved tag key {name!r}: statsd_exporter uses it for histogram buckets")
    if name == "quantile":
        raise ValueError(f"reserved tag key {name!r}: statsd_exporter uses it for summary quantiles")
    if name.startswith("__"):
        raise ValueError(f"reserved tag key {name!r}: keys starting with '__' are reserved by Prometheus")
    return name


def tag_value(value: object) -> str:
    """A tag value that cannot break a line: edge whitespace stripped, then ``,|#`` and control characters
    become ``_``.

    >>> tag_value(" a,b|c#d\\te\\n "), tag_value(3.5)
    ('a_b_c_d_e', '3.5')
    """
    return _BAD_VALUE_CHARS.sub("_", (value if isinstance(value, str) else str(value)).strip())


class TagText(NamedTuple):
    """What :func:`tag_text` makes of some tags: the wire text (``k:v,k2:v2``) and why tags were left out."""

    text: str
    drops: tuple


def tag_pairs(tags: Tags) -> tuple[dict, tuple]:
    """``({label: value}, drop reasons)`` of tags (the rules in the module docstring); ``ValueError`` for
    what is refused.

    >>> tag_pairs({"status": 200, "method": " GET", "vip": None})
    ({'status': '200', 'method': 'GET'}, ('bare_tag',))
    """
    if not tags:
        return {}, ()
    if isinstance(tags, Mapping):
        items: list = [(k, v) for k, v in tags.items()]
    elif isinstance(tags, str):
        raise ValueError(f"tags={tags!r}: expected a list of 'key:value' strings or a dict, not a str")
    else:
        items = []
        for tag in tags:
            if not isinstance(tag, str):
                raise ValueError(f"tag {tag!r} is not a 'key:value' str")
            key, sep, value = tag.partition(":")
            items.append((key, value if sep else None))
    pairs: dict = {}
    drops: list = []
    for key, value in items:
        if value is None:
            drops.append("bare_tag")
            continue
        name = label_name((key if isinstance(key, str) else str(key)).strip())
        if not name:
            drops.append("empty_key")
            continue
        text = tag_value(value)
        if not text:
            drops.append("empty_value")
            continue
        pairs[check_label(name)] = text
    return pairs, tuple(drops)


def tag_text(tags: Tags) -> TagText:
    """The pure core of the tag rules: tags -> ``TagText(wire text, drop reasons)``; ``ValueError`` for what
    is refused. Same input, same output: safe to cache by content.

    >>> tag_text(["x:1", ":y", "le:0.5"])
    Traceback (most recent call last):
    ...
    ValueError: reserved tag key 'le': statsd_exporter uses it for histogram buckets
    """
    pairs, drops = tag_pairs(tags)
    return TagText(",".join(f"{k}:{v}" for k, v in pairs.items()), drops)


class TagPolicy:
    """What to do when tags are left out: count each reason in ``counts`` (a dict, e.g. a client's stats)
    and, when ``strict``, warn with :class:`DroppedTagWarning`. Refused tags always raise ``ValueError``:
    the caller decides (a client raises in strict mode and drops the call in production).

    >>> policy = TagPolicy(strict=False)
    >>> format_tags(["vip", "tier:1"], policy), policy.counts
    ('|#tier:1', {'bare_tag': 1, 'empty_value': 0, 'empty_key': 0})
    """

    __slots__ = ("_counts", "_strict")

    def __init__(self, strict: bool, counts: dict | None = None) -> None:
        self._strict = strict
        self._counts = counts if counts is not None else dict.fromkeys(DROP_REASONS, 0)

    # Read-only, so that a subclass may compute them (a client's policy follows the client's settings).
    @property
    def strict(self) -> bool:
        return self._strict

    @property
    def counts(self) -> dict:
        return self._counts

    def dropped(self, drops: tuple, tags: object) -> None:
        """Count (and in strict mode warn about) tags of ``tags`` left out for ``drops``."""
        for reason in drops:
            self.counts[reason] = self.counts.get(reason, 0) + 1
        if self.strict:
            warnings.warn(
                f"statsd_instrument: tags {tags!r}: not sent ({', '.join(drops)}); the metric was",
                DroppedTagWarning,
                stacklevel=_caller_level(),
            )


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside this package: a warning names the caller's line."""
    frame: FrameType | None = sys._getframe(2)
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


def format_tags(tags: Tags, policy: TagPolicy, constant: Sequence[str] = ()) -> str:
    """The one entry point every caller passes tags through: the ``|#...`` suffix of a line ('' without
    tags). ``constant`` are tags already normalised (``"k:v"``) that call tags with the same key replace.

    >>> format_tags(["a.b:1", "c"], TagPolicy(strict=False))
    '|#a_b:1'
    """
    if not tags:
        return "|#" + ",".join(constant) if constant else ""
    core = tag_text(tags)
    if core.drops:
        policy.dropped(core.drops, tags)
    if not constant:
        return "|#" + core.text if core.text else ""
    merged = dict(tag.split(":", 1) for tag in constant)
    for tag in core.text.split(",") if core.text else ():
        key, _, value = tag.partition(":")
        merged[key] = value
    return "|#" + ",".join(f"{k}:{v}" for k, v in merged.items()) if merged else ""


def tag_list(tags: Tags | str, field: str, reserved: Collection[str] = ()) -> list[str]:
    """Static tags (configuration) as normalised ``"k:v"`` strings; a str is a comma-separated list. Errors
    name ``field``; a tag left out (bare, empty) raises here too: configuration is checked at start-up.

    >>> tag_list("env:prod, availability-zone:eu-1a", "STATSD_TAGS")
    ['env:prod', 'availability_zone:eu-1a']
    >>> tag_list(["status:x"], "tags", reserved=("status",))
    Traceback (most recent call last):
    ...
    ValueError: tags=['status:x']: tag key 'status' is set by statsd_instrument itself
    >>> tag_list(["canary"], "tags")
    Traceback (most recent call last):
    ...
    ValueError: tags=['canary']: tag not sent (bare_tag): use 'key:value'
    """
    given = tags
    if isinstance(tags, str):
        tags = [t for t in tags.split(",") if t.strip()]
    elif tags is not None and not isinstance(tags, (Mapping, list, tuple)):
        raise ValueError(f"{field}={tags!r}: expected a mapping or a list of 'key:value' strings")
    try:
        pairs, drops = tag_pairs(tags)
    except ValueError as err:
        raise ValueError(f"{field}={given!r}: {err}") from None
    if drops:
        raise ValueError(f"{field}={given!r}: tag not sent ({', '.join(drops)}): use 'key:value'")
    for key in pairs:
        if key in reserved:
            raise ValueError(f"{field}={given!r}: tag key {key!r} is set by statsd_instrument itself")
    return [f"{k}:{v}" for k, v in pairs.items()]


# -- metric names ------------------------------------------------------------------------------------------

_good_names: set = set()


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


# -- host:port, booleans, durations ----------------------------------------------------------------------


def check_port(value: object, field: str, *, listen: bool = False) -> int:
    """A port number; 0 (any free port) only where we ``listen``.

    >>> check_port(" 8125", "STATSD_PORT"), check_port("0", "--listen", listen=True)
    (8125, 0)
    >>> check_port("0", "STATSD_PORT")
    Traceback (most recent call last):
    ...
    ValueError: STATSD_PORT='0': expected an integer port 1-65535
    """
    text = str(value).strip()
    low = 0 if listen else 1
    if isinstance(value, bool) or not text.isdigit() or not low <= int(text) <= 65535:
        raise ValueError(f"{field}={value!r}: expected an integer port {low}-65535")
    return int(text)


def check_host(value: object, field: str) -> str:
    """A host name or IP address (stripped; brackets of ``[v6]`` removed).

    >>> check_host(" [::1] ", "host")
    '::1'
    >>> check_host("a b", "host")
    Traceback (most recent call last):
    ...
    ValueError: host='a b': expected a host name or IP address
    """
    host = str(value).strip().strip("[]")
    if not host or any(c in host for c in " /\n\t"):
        raise ValueError(f"{field}={value!r}: expected a host name or IP address")
    return host


def parse_host_port(text: str, field: str, *, default_host: str = "127.0.0.1", listen: bool = False) -> tuple:
    """``host:port`` (``[v6]:port`` too) -> ``(host, port)``. An empty host is ``default_host`` (a listener
    passes ``"0.0.0.0"``: every interface, as Go reads ``:9125``); port 0 only where we ``listen``.

    >>> parse_host_port("old-statsd:8125", "--to"), parse_host_port(":8125", "--to")
    (('old-statsd', 8125), ('127.0.0.1', 8125))
    >>> parse_host_port(":0", "--listen", default_host="0.0.0.0", listen=True)
    ('0.0.0.0', 0)
    >>> parse_host_port("statsd", "--to")
    Traceback (most recent call last):
    ...
    ValueError: --to='statsd': expected HOST:PORT
    """
    host, sep, port = str(text).rpartition(":")
    if not sep:
        raise ValueError(f"{field}={text!r}: expected HOST:PORT")
    try:
        number = check_port(port, field, listen=listen)
        return (check_host(host, field) if host.strip("[] ") else default_host), number
    except ValueError:
        raise ValueError(f"{field}={text!r}: expected HOST:PORT") from None


def parse_bool(value: object, field: str) -> bool:
    """A bool, or one of ``1/0 true/false yes/no on/off`` (any case; empty is false).

    >>> parse_bool("Yes", "STATSD_STRICT"), parse_bool("", "STATSD_STRICT"), parse_bool(False, "strict")
    (True, False, False)
    >>> parse_bool("maybe", "STATSD_IN_FLIGHT")
    Traceback (most recent call last):
    ...
    ValueError: STATSD_IN_FLIGHT='maybe': expected one of 1/0, true/false, yes/no, on/off
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{field}={value!r}: expected one of 1/0, true/false, yes/no, on/off")


def check_seconds(value: object, field: str, low: float, high: float) -> float:
    """A duration in seconds within ``[low, high]`` (an int or float, not a bool), as a float.

    >>> check_seconds(1, "flush_interval_s", 0.01, 60)
    1.0
    >>> check_seconds("1", "flush_interval_s", 0.01, 60)
    Traceback (most recent call last):
    ...
    ValueError: flush_interval_s='1': expected seconds between 0.01 and 60
    """
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ValueError(f"{field}={value!r}: expected seconds between {low:g} and {high:g}")
    return float(value)
