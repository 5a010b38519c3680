"""DogStatsD tags for the legacy clients' optional ``tags`` argument.

Tags are a mapping (``{"endpoint": "checkout"}``) or a sequence of ``"key:value"`` strings. Characters that
would break a statsd line (``,`` ``|`` ``#``, newlines) become ``_``, surrounding spaces are stripped (the
exporter does not trim), and keys the exporter cannot take as label names (``le``, ``quantile``, ``__*``)
are left out with a warning in the log, so a tag can never corrupt a line or the exporter.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence, Union

from statsd_instrument.wire import RESERVED_KEYS, normalise_value

Tags = Union[Mapping[str, object], Sequence[str], None]

log = logging.getLogger("statsd_instrument.legacy")

_warned_keys: set[str] = set()


def _pairs(tags: Tags) -> list[tuple[str, str | None]]:
    if isinstance(tags, Mapping):
        return [(str(key), None if value is None else str(value)) for key, value in tags.items()]
    if isinstance(tags, str):  # one "k:v" string, not a sequence of characters
        tags = [tags]
    pairs: list[tuple[str, str | None]] = []
    for tag in tags or ():
        key, sep, value = str(tag).partition(":")
        pairs.append((key, value if sep else None))
    return pairs


def format_tags(tags: Tags) -> str:
    """The ``k:v,k2:v2`` tag text for ``tags`` (empty string for none).

    >>> format_tags({"endpoint": "checkout", "status": 200})
    'endpoint:checkout,status:200'
    >>> format_tags(["region: eu,west", "canary"])
    'region:eu_west,canary'
    >>> format_tags(None)
    ''
    """
    parts = []
    for raw_key, raw_value in _pairs(tags):
        key = normalise_value(raw_key).replace(":", "_")
        if not key or key in RESERVED_KEYS or key.startswith("__"):
            if key not in _warned_keys:
                _warned_keys.add(key)
                log.warning("statsd tag key %r left out: the exporter cannot use it as a label name", key)
            continue
        parts.append(key if raw_value is None else f"{key}:{normalise_value(raw_value)}")
    return ",".join(parts)


def join_tags(call_tags: str, constant_tags: str) -> str:
    """``|#...`` suffix for a line: per-call tags first, then the client's constant tags.

    >>> join_tags("status:200", "service:shop")
    '|#status:200,service:shop'
    >>> join_tags("", "")
    ''
    """
    text = ",".join(t for t in (call_tags, constant_tags) if t)
    return f"|#{text}" if text else ""
