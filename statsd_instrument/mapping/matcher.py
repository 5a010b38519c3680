"""Match a statsd metric name and type against a loaded mapping, with statsd_exporter's precedence.

Glob rules are tried first and win over regex rules whatever the file order. statsd_exporter keeps glob
rules in a tree of dot-separated segments (one tree per metric type); this module builds the same tree so
that its quirks are reproduced:

- ``*`` matches exactly one whole segment (an empty one too); the lowest-indexed rule among all that match
  wins (unless ``glob_disable_ordering``: then the first found, trying literal segments before ``*``);
- a rule whose whole path already exists as a prefix of an earlier, longer rule never matches (the tree
  node exists, so the rule is not attached to it), and a repeated pattern keeps the first rule but the
  last one's priority.

Regex rules are then tried in file order with Python's ``re`` (restricted to what RE2 accepts).

>>> from statsd_instrument.mapping import parse_mapping
>>> m = Matcher(parse_mapping("mappings:\\n- match: a.*.c\\n  name: x_${1}\\n  labels: {seg: $1}\\n"))
>>> result = m.match("a.b.c", "counter")
>>> result.name, result.labels, result.rule.index
('x_b', {'seg': 'b'}, 0)
>>> m.match("a.b", "counter") is None
True
"""

from __future__ import annotations

import dataclasses

from statsd_instrument.mapping.model import METRIC_TYPES, MappingConfig, Rule
from statsd_instrument.mapping.templates import expand_glob, expand_regex


@dataclasses.dataclass(frozen=True)
class MatchResult:
    """The rule that matched a statsd name, the expanded Prometheus name and the rule's labels.

    >>> from statsd_instrument.mapping import parse_mapping
    >>> config = parse_mapping("mappings:\\n- {match: a, name: b}\\n")
    >>> Matcher(config).match("a", "gauge").name
    'b'
    """

    rule: Rule
    name: str
    labels: dict


class _Node:
    __slots__ = ("children", "priority", "rule")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.rule: Rule | None = None
        self.priority = 0


class Matcher:
    """Answers ``match(name, metric_type)`` for one ``MappingConfig`` (thread-safe: read-only after init).

    ``metric_type`` is ``counter``, ``gauge`` or ``observer`` (timers, histograms and distributions).

    >>> from statsd_instrument.mapping import parse_mapping
    >>> Matcher(parse_mapping("defaults: {glob_disable_ordering: true}")).ordered
    False
    """

    def __init__(self, config: MappingConfig) -> None:
        self.config = config
        self.ordered = not config.defaults.glob_disable_ordering
        self._roots = {t: _Node() for t in METRIC_TYPES}
        self._regex_rules = []
        for rule in config.rules:
            if rule.match_type == "regex":
                if rule.regex is not None:
                    self._regex_rules.append(rule)
            elif rule.match_type == "glob":
                self._add_glob(rule)

    def _add_glob(self, rule: Rule) -> None:
        types = [rule.match_metric_type] if rule.match_metric_type else list(METRIC_TYPES)
        segments = rule.match.split(".")
        for metric_type in types:
            node = self._roots[metric_type]
            for i, segment in enumerate(segments):
                child = node.children.get(segment)
                if child is None:
                    child = node.children[segment] = _Node()
                    if i == len(segments) - 1:
                        child.rule = rule
                node = child
            node.priority = rule.index

    def glob_node_rule(self, pattern: str, metric_type: str) -> tuple:
        """``(path exists, rule attached)`` for a glob pattern in the tree of ``metric_type``.

        A rule that is not the one attached to its own pattern's path can never match.

        >>> from statsd_instrument.mapping import parse_mapping
        >>> m = Matcher(parse_mapping("mappings:\\n- {match: a.b.c, name: x}\\n- {match: a.b, name: y}\\n"))
        >>> m.glob_node_rule("a.b", "counter"), m.glob_node_rule("a.b.c", "gauge")[1].name
        ((True, None), 'x')
        """
        node = self._roots[metric_type]
        for segment in pattern.split("."):
            child = node.children.get(segment)
            if child is None:
                return False, None
            node = child
        return True, node.rule

    def match(self, name: str, metric_type: str) -> MatchResult | None:
        """The mapping of ``name`` for an event of ``metric_type``, or None if no rule matches.

        >>> from statsd_instrument.mapping import parse_mapping
        >>> m = Matcher(parse_mapping("mappings:\\n- {match: a, name: b, match_metric_type: gauge}\\n"))
        >>> m.match("a", "counter") is None, m.match("a", "gauge").rule.index
        (True, 0)
        """
        root = self._roots.get(metric_type)
        if root is not None and root.children:
            segments = name.split(".")
            found = self._search_glob(root, segments)
            if found is not None:
                node, captures = found
                rule = node.rule
                labels = {k: expand_glob(v, captures) for k, v in rule.labels.items()}
                return MatchResult(rule, expand_glob(rule.name, captures), labels)
        for rule in self._regex_rules:
            matched = rule.regex.search(name)
            if matched is None:
                continue
            if rule.match_metric_type and rule.match_metric_type != metric_type:
                continue
            labels = {k: expand_regex(v, matched) for k, v in rule.labels.items()}
            return MatchResult(rule, expand_regex(rule.name, matched), labels)
        return None

    def _search_glob(self, root: _Node, segments: list) -> tuple | None:
        best: list = [None, None]  # node, captures
        last = len(segments) - 1
        # Iterative depth-first search: literal segment before '*', as the exporter's FSM does.
        stack: list[tuple[_Node, int, tuple[str, ...]]] = [(root, 0, ())]
        while stack:
            node, depth, captures = stack.pop()
            segment = segments[depth]
            order = []
            literal = node.children.get(segment)
            if literal is not None:
                order.append((literal, captures))
            wildcard = node.children.get("*")
            if wildcard is not None:
                order.append((wildcard, (*captures, segment)))
            if depth == last:
                for child, child_captures in order:
                    if child.rule is None:
                        continue
                    if not self.ordered:
                        return child, list(child_captures)
                    if best[0] is None or child.priority < best[0].priority:
                        best[0], best[1] = child, list(child_captures)
            else:
                for child, child_captures in reversed(order):
                    if child.children:
                        stack.append((child, depth + 1, child_captures))
        if best[0] is None:
            return None
        return best[0], best[1]
