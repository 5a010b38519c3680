"""DogStatsD tags for the legacy clients' optional ``tags`` argument, by the rules of
:mod:`statsd_instrument.validation` (the one owner of tag rules).

Tags are a mapping (``{"endpoint": "checkout"}``) or a sequence of ``"key:value"`` strings (one such string
alone is one tag). A bare tag, an empty value or an empty key is left out (counted in
:data:`POLICY`'s ``counts``); a reserved key (``le``, ``quantile``, ``__*``) raises ``ValueError``: the
clients drop that line and log it, as they do for every bad call.
"""

from __future__ import annotations

from statsd_instrument.validation import TagPolicy, Tags
from statsd_instrument.validation import format_tags as _format_tags

__all__ = ["POLICY", "Tags", "format_tags", "join_tags"]

#: the legacy clients' tag policy: never strict (they never raise into the app); counts what was left out
POLICY = TagPolicy(strict=False)


def format_tags(tags: Tags | str) -> str:
    """The ``k:v,k2:v2`` tag text for ``tags`` (empty string for none).

    >>> format_tags({"endpoint": "checkout", "status": 200})
    'endpoint:checkout,status:200'
    >>> format_tags(["region: eu,west", "canary", "availability-zone:a"])
    'region:eu_west,availability_zone:a'
    >>> format_tags(None)
    ''
    """
    if isinstance(tags, str):  # one "k:v" string, not a sequence of characters
        tags = [tags]
    return _format_tags(tags, POLICY)[2:]


def join_tags(call_tags: str, constant_tags: str) -> str:
    """``|#...`` suffix for a line: per-call tags first, then the client's constant tags.

    >>> join_tags("status:200", "service:shop")
    '|#status:200,service:shop'
    >>> join_tags("", "")
    ''
    """
    text = ",".join(t for t in (call_tags, constant_tags) if t)
    return f"|#{text}" if text else ""
