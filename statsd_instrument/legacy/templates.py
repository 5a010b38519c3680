"""Find the templates in legacy dotted names: which segments vary (labels) and which name the metric.

Names of one statsd kind and one segment count are clustered the way log-template miners do it: a name
joins the most similar template when at least half of its segments equal the template's literal
segments; segments that differ become wildcards. HTTP methods, status codes and plain numbers count as
equal to others of their class, so ``myapp.cart.GET.200`` and ``myapp.cart.POST.201`` share a template.
Each template then gets a Prometheus name (its literal segments, plus ``_total`` / ``_seconds``) and a
label name per wildcard (``method``, ``status``, ``service`` for the first segment, else the segment
before it).

>>> ts = find_templates(["myapp.cart.GET.200", "myapp.cart.POST.201", "myapp.home.GET.200"], "counter")
>>> [(t.pattern(), t.metric_name(), t.label_names()) for t in ts]
[('myapp.*.*.*', 'http_requests_total', ['endpoint', 'method', 'status'])]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from statsd_instrument.validation import RESERVED_KEYS

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})
_STATUS = re.compile(r"[1-5][0-9][0-9]")
_NUMBER = re.compile(r"[0-9]+")
# a literal glob segment every Go exporter version accepts (statsdMetricRE in pkg/mapper; old ones
# wanted 2+ characters and a letter or _ first)
GLOB_SEGMENT = re.compile(r"[a-zA-Z_](-?[a-zA-Z0-9_])+")
_NOT_NAME_CHAR = re.compile(r"[^a-zA-Z0-9_]")


def segment_class(segment: str) -> str:
    """The class a segment is compared by: ``<method>``, ``<status>``, ``<number>`` or itself.

    >>> [segment_class(s) for s in ("GET", "404", "17", "cart")]
    ['<method>', '<status>', '<number>', 'cart']
    """
    if segment in HTTP_METHODS:
        return "<method>"
    if _STATUS.fullmatch(segment):
        return "<status>"
    if _NUMBER.fullmatch(segment):
        return "<number>"
    return segment


def sanitize_name(text: str) -> str:
    """``text`` as a Prometheus metric or label name: invalid characters become ``_``.

    >>> sanitize_name("api-v2"), sanitize_name("2xx")
    ('api_v2', '_2xx')
    """
    name = _NOT_NAME_CHAR.sub("_", text)
    return f"_{name}" if name[:1].isdigit() else name


@dataclass
class Template:
    """One proposed rule: literal segments (``None`` = wildcard) and the names it stands for.

    >>> names = ["shop.queue.sms.size", "shop.queue.mail.size"]
    >>> t = Template(["shop", "queue", None, "size"], "gauge", names)
    >>> t.pattern(), t.metric_name(), t.labels(), t.is_glob_safe()
    ('shop.queue.*.size', 'shop_queue_size', {'queue': '${1}'}, True)
    >>> print(Template(["v1", None], "counter", ["v1.hits"]).regex())
    ^v1\\.([^.]+)$
    """

    segments: list  # list[str | None]
    kind: str  # counter | gauge | observer
    names: list = field(default_factory=list)
    unit_ms: bool = False  # every observation came as a `|ms` timer: values are seconds in Prometheus
    chosen_name: str = ""  # metric_name(), made unique among the proposed rules

    def values_at(self, index: int) -> set:
        return {name.split(".")[index] for name in self.names}

    def similarity(self, segments: list) -> float:
        """Share of ``segments`` equal to a literal, or in the one class of a wildcard's values."""
        classes = self._classes()
        same = 0
        for mine, theirs, cls in zip(self.segments, segments, classes):
            theirs_class = segment_class(theirs)
            same += (mine is not None and segment_class(mine) == theirs_class) or (
                mine is None and cls == theirs_class
            )
        return same / len(segments)

    def add(self, name: str) -> None:
        for index, segment in enumerate(name.split(".")):
            if self.segments[index] is not None and self.segments[index] != segment:
                self.segments[index] = None
        self.names.append(name)

    def pattern(self) -> str:
        """The glob: literal segments and ``*`` wildcards."""
        return ".".join("*" if s is None else s for s in self.segments)

    def is_glob_safe(self) -> bool:
        """Whether every literal segment is one the Go exporter accepts in a glob (else use a regex)."""
        literals = [s for s in self.segments if s is not None]
        return len(self.segments) > 1 and all(GLOB_SEGMENT.fullmatch(s) for s in literals)

    def regex(self) -> str:
        """An anchored regex with one group per wildcard, equivalent to the glob."""
        return "^" + r"\.".join("([^.]+)" if s is None else re.escape(s) for s in self.segments) + "$"

    def _classes(self) -> list:
        classes = []
        for index, segment in enumerate(self.segments):
            values = self.values_at(index) if segment is None else {segment}
            found = {segment_class(v) for v in values}
            classes.append(found.pop() if len(found) == 1 and next(iter(found)).startswith("<") else None)
        return classes

    def is_request_metric(self) -> bool:
        """``<app>.<view>.<method>.<status>``: maps onto the request-metric contract."""
        classes = self._classes()
        return len(self.segments) == 4 and classes[2:] == ["<method>", "<status>"] and self.kind != "gauge"

    def labels(self) -> dict:
        """Label name -> value template (``${n}`` for the n-th wildcard, literal text otherwise)."""
        if self.is_request_metric():
            keys = ["service", "endpoint", "method", "status"]
            labels, wildcard = {}, 0
            for key, segment in zip(keys, self.segments):
                if segment is None:
                    wildcard += 1
                    labels[key] = f"${{{wildcard}}}"
                else:
                    labels[key] = segment
            return labels
        labels, wildcard, classes = {}, 0, self._classes()
        for index, segment in enumerate(self.segments):
            if segment is not None:
                continue
            wildcard += 1
            key = _label_for(index, self.segments, classes[index])
            while key in labels or len(key) < 2 or key in RESERVED_KEYS or key.startswith("__"):
                key = (
                    f"{key}_{index + 1}"
                    if len(key) >= 2 and key not in RESERVED_KEYS
                    else f"segment{index + 1}"
                )
            labels[key] = f"${{{wildcard}}}"
        return labels

    def label_names(self) -> list:
        """Names of the labels taken from wildcards."""
        return [key for key, value in self.labels().items() if value.startswith("${")]

    def metric_name(self) -> str:
        """The Prometheus name the rule gives."""
        if self.is_request_metric():
            return "http_requests_total" if self.kind == "counter" else "http_request_duration_seconds"
        literals = [s for s in self.segments if s is not None]
        base = sanitize_name("_".join(literals)) if literals else "legacy"
        suffix = {"counter": "_total", "observer": "_seconds" if self.unit_ms else ""}.get(self.kind, "")
        return base if base.endswith(suffix) else base + suffix


def _label_for(index: int, segments: list, segment_kind: str | None) -> str:
    if segment_kind == "<method>":
        return "method"
    if segment_kind == "<status>":
        return "status"
    if index == 0:
        return "service"
    before = segments[index - 1]
    if before is not None:
        return sanitize_name(before).lower()
    return f"segment{index + 1}"


def _threshold_met(score: float, length: int) -> bool:
    return score >= 0.5 if length >= 3 else score == 1.0


def find_templates(names: Iterable[str], kind: str) -> list:
    """Cluster the dotted ``names`` of one statsd ``kind`` into :class:`Template` objects.

    >>> names = ["app.signups.count", "app.logins.count", "app.cache.hits", "app.cache.misses"]
    >>> for t in find_templates(names + ["web.cache.hits"], "counter"):
    ...     print(t.pattern(), t.metric_name(), t.labels())
    *.cache.* cache_total {'service': '${1}', 'cache': '${2}'}
    app.*.count app_count_total {'app': '${1}'}
    """
    templates: list = []
    for name in sorted(set(names)):
        _place(name, kind, templates)
    return _merge_services(templates)


def _place(name: str, kind: str, templates: list) -> None:
    segments = name.split(".")
    best, best_score = None, 0.0
    for template in templates:
        if len(template.segments) != len(segments):
            continue
        score = template.similarity(segments)
        if score > best_score:
            best, best_score = template, score
    if best is not None and _threshold_met(best_score, len(segments)):
        best.add(name)
    else:
        templates.append(Template(list(segments), kind, [name]))


def _compatible(one: Template, other: Template) -> bool:
    """Same shape after the first segment: equal literals and wildcards, or a lone name fitting them."""
    if len(one.segments) != len(other.segments) or len(one.segments) < 2:
        return False
    pairs = list(zip(one.segments[1:], other.segments[1:]))
    if all(a == b for a, b in pairs):
        return True
    lone, wide = (one, other) if len(one.names) == 1 else (other, one)
    return len(lone.names) == 1 and all(
        b is None or a == b for a, b in zip(lone.segments[1:], wide.segments[1:])
    )


def _merge_services(templates: list) -> list:
    """Templates that agree but for their first segment (the same metrics sent by several apps) become
    one, the first segment a ``service`` label; a wildcard agrees with anything."""
    merged: list = []
    for template in templates:
        for index, other in enumerate(merged):
            if _compatible(template, other):
                segments = [None] + [
                    a if a == b else None for a, b in zip(template.segments[1:], other.segments[1:])
                ]
                merged[index] = Template(segments, template.kind, other.names + template.names)
                break
        else:
            merged.append(template)
    return merged
