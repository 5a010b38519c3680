"""Findings that need the whole file: glob rules that can never match, names that break the exporter.

A rule whose (literal) target name is one of the exporter's own series (``go_goroutines``,
``statsd_exporter_lines_total``, ...) makes every later scrape fail once it is written; two rules that give
one name (or its ``_sum``/``_count``/``_bucket``) two metric types lose the events of the type seen second.

statsd_exporter loads such files silently. A glob rule is dead when an earlier rule with the same or a
wider pattern (``*`` where it has a word) catches everything it would, when it repeats an earlier pattern,
or when its whole path is already the prefix of an earlier, longer glob (the exporter's matching tree
then never attaches it).

>>> from statsd_instrument.mapping import lint_text
>>> text = "mappings:\\n- match: a.*\\n  name: x\\n- match: a.b\\n  name: y\\n"
>>> [f.format("m.yml") for f in lint_text(text)[1]]
['m.yml:4: warning: mappings[1].match: never matches: rule 0 (line 2, a.*) matches everything it does']
"""

from __future__ import annotations

from statsd_instrument.guard import family_samples, reserved_family
from statsd_instrument.mapping.gosyntax import escape_metric_name
from statsd_instrument.mapping.matcher import Matcher
from statsd_instrument.mapping.model import METRIC_TYPES, Finding, MappingConfig, Rule


def _types(rule: Rule) -> set:
    return {rule.match_metric_type} if rule.match_metric_type else set(METRIC_TYPES)


def _covers(wide: Rule, narrow: Rule) -> bool:
    wide_parts, narrow_parts = wide.match.split("."), narrow.match.split(".")
    if len(wide_parts) != len(narrow_parts) or not _types(narrow) <= _types(wide):
        return False
    return all(w == "*" or w == n for w, n in zip(wide_parts, narrow_parts))


def cross_rule_findings(config: MappingConfig) -> list:
    """Warnings for glob rules that can never match and for target names that break the exporter.

    >>> from statsd_instrument.mapping import parse_mapping
    >>> cross_rule_findings(parse_mapping("mappings:\\n- {match: a.b, name: x}\\n"))
    []
    """
    return _dead_rule_findings(config) + name_findings(config)


def _kinds(rule: Rule, config: MappingConfig) -> list:
    """The Prometheus types a rule can give its name (counter, gauge, histogram or summary)."""
    observer = rule.observer_type or config.defaults.observer_type or "summary"
    return [observer if t == "observer" else t for t in sorted(_types(rule))]


def name_findings(config: MappingConfig) -> list:
    """Warnings for rules whose literal target name is one of the exporter's own series, or gets a second
    type from a later rule (directly or through its ``_sum``/``_count``/``_bucket`` samples).

    >>> from statsd_instrument.mapping import parse_mapping
    >>> text = "mappings:\\n- {match: a.b, name: go_goroutines}\\n"
    >>> [f.message for f in name_findings(parse_mapping(text))]  # doctest: +ELLIPSIS
    ['go_goroutines is a metric statsd_exporter serves itself (go_goroutines): every later scrape ...']
    """
    findings = []
    owners: dict = {}  # sample name -> (family, type, rule)
    for rule in config.rules:
        if rule.action != "map" or not rule.name or "$" in rule.name:
            continue
        name = escape_metric_name(rule.name)
        where = f"mappings[{rule.index}].name"
        for kind in _kinds(rule, config):
            own = reserved_family(name, kind)
            if own is not None:
                findings.append(
                    Finding(
                        rule.line_of("name"),
                        where,
                        f"{name} is a metric statsd_exporter serves itself ({own}): every later scrape of "
                        "the Go exporter fails once an event writes it; choose another name",
                    )
                )
                break
        if not rule.match_metric_type:  # the type comes from each event: no fixed type to compare
            continue
        kind = _kinds(rule, config)[0]
        clash = next(
            (owners[s] for s in family_samples(name, kind) if s in owners and owners[s][:2] != (name, kind)),
            None,
        )
        if clash is not None:
            family, other_kind, other = clash
            findings.append(
                Finding(
                    rule.line_of("name"),
                    where,
                    f"{name} is a {kind} here but rule {other.index} (line {other.line}) makes "
                    f"{family} a {other_kind}"
                    + (" (its _sum/_count/_bucket)" if family != name else "")
                    + ": the exporter keeps the type it sees first and drops the other's events",
                )
            )
            continue
        for sample in family_samples(name, kind):
            owners.setdefault(sample, (name, kind, rule))
    return findings


def _dead_rule_findings(config: MappingConfig) -> list:
    globs = [r for r in config.rules if r.match_type == "glob" and r.match]
    if not globs:
        return []
    matcher = Matcher(config)
    findings = []
    for rule in globs:
        message = _dead_reason(rule, globs, matcher, config)
        if message:
            findings.append(Finding(rule.line_of("match"), f"mappings[{rule.index}].match", message))
    return findings


def _dead_reason(rule: Rule, globs: list, matcher: Matcher, config: MappingConfig) -> str:
    for metric_type in sorted(_types(rule)):
        exists, attached = matcher.glob_node_rule(rule.match, metric_type)
        if not exists or attached is rule:
            continue
        if attached is not None:
            first = attached
            return f"never matches: repeats rule {first.index} (line {first.line}, {first.match})"
        longer = next(
            (g for g in globs if g.index < rule.index and g.match.startswith(rule.match + ".")), None
        )
        where = f"rule {longer.index} (line {longer.line}, {longer.match})" if longer else "an earlier rule"
        return (
            f"never matches: its path is already the prefix of the longer glob {where}; "
            "statsd_exporter only attaches a glob to a new path, so put shorter globs first"
        )
    if config.defaults.glob_disable_ordering:
        return ""
    for earlier in globs:
        if earlier.index >= rule.index:
            break
        if _covers(earlier, rule):
            where = f"rule {earlier.index} (line {earlier.line}, {earlier.match})"
            return f"never matches: {where} matches everything it does"
    return ""
