"""statsd_exporter mapping files: load and validate them, and ask what a statsd metric becomes.

One implementation of the exporter's mapping semantics, shared by ``statsd-instrument exporter``,
``check-mapping``, ``explain`` and the legacy ``suggest-mapping`` tool.

>>> config = parse_mapping('''
... mappings:
... - match: "request_count"
...   name: "http_requests_total"
... ''')
>>> outcome = Resolver(config).resolve("request_count", "counter", {"method": "GET"})
>>> outcome.status, outcome.name, outcome.labels
('mapped', 'http_requests_total', {'method': 'GET'})
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import yaml

from statsd_instrument.mapping.gosyntax import escape_metric_name
from statsd_instrument.mapping.matcher import Matcher, MatchResult
from statsd_instrument.mapping.model import Defaults, Finding, MappingConfig, MappingError, Rule
from statsd_instrument.mapping.resolve import Outcome, Resolver
from statsd_instrument.mapping.validate import build_config
from statsd_instrument.mapping.yamlload import load_yaml

__all__ = [
    "Defaults",
    "Finding",
    "MappingConfig",
    "MappingError",
    "MatchResult",
    "Matcher",
    "Outcome",
    "Resolver",
    "Rule",
    "escape_metric_name",
    "lint_text",
    "load_mapping",
    "parse_mapping",
]


def lint_text(text: str, source: str = "<mapping>") -> tuple[MappingConfig, list[Finding]]:
    """Parse mapping YAML and return the config and every finding (errors and warnings, by line).

    >>> _, findings = lint_text("mappings:\\n- match: a.b\\n")
    >>> [f.format("m.yml") for f in findings]
    ["m.yml:2: error: mappings[0].name: metric mapping didn't set a metric name"]
    """
    try:
        data = load_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(err, "problem", None) or str(err)
        finding = Finding(line, "(yaml)", f"not valid YAML: {problem}", "error")
        return MappingConfig(Defaults(), [], source), [finding]
    config, findings = build_config(data, source)
    from statsd_instrument.mapping.lint import cross_rule_findings

    findings = sorted(findings + cross_rule_findings(config), key=lambda f: f.line)
    config.findings = [f for f in findings if f.severity == "warning"]
    return config, findings


def parse_mapping(text: str, source: str = "<mapping>") -> MappingConfig:
    """Load mapping YAML as statsd_exporter does; MappingError (with every refusal) if it would refuse it.

    >>> parse_mapping("mappings:\\n- match: a.b\\n  name: x\\n  labels: {k: v}\\n")
    Traceback (most recent call last):
    ...
    statsd_instrument.mapping.model.MappingError: <mapping>:4: error: mappings[0].labels.k: invalid \
label key 'k': label names need at least 2 characters (older exporters accepted 1)
    """
    config, findings = lint_text(text, source)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise MappingError(source, errors)
    return config


def load_mapping(path: Union[str, Path]) -> MappingConfig:
    """Load a mapping file; MappingError if it is unreadable or statsd_exporter would refuse it.

    >>> load_mapping("/nonexistent/mapping.yml")
    Traceback (most recent call last):
    ...
    statsd_instrument.mapping.model.MappingError: /nonexistent/mapping.yml:0: error: (file): cannot read: \
No such file or directory
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise MappingError(source, [Finding(0, "(file)", f"cannot read: {reason}", "error")]) from None
    return parse_mapping(text, source)
