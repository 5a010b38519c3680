"""The typed model of a statsd_exporter mapping file: defaults, rules, and findings about them.

``Finding`` is one problem at one line. ``severity="error"`` means statsd_exporter refuses to load the file;
``"warning"`` means it loads it and the problem shows later (a crash, an empty name, a dead rule).

>>> Finding(3, "mappings[0].ttl", "integer ttl is nanoseconds").format("m.yml")
'm.yml:3: warning: mappings[0].ttl: integer ttl is nanoseconds'
"""

from __future__ import annotations

import dataclasses
import re
from typing import Tuple

#: Buckets of the Go client's ``prometheus.DefBuckets``, used when a file sets none.
DEFAULT_BUCKETS: Tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: ``(quantile, allowed error)`` of statsd_exporter's default summary objectives.
DEFAULT_QUANTILES: Tuple[Tuple[float, float], ...] = ((0.5, 0.05), (0.9, 0.01), (0.99, 0.001))
#: Go client summary defaults used when max_age / age_buckets / buf_cap are 0.
DEFAULT_MAX_AGE_S = 600.0
DEFAULT_AGE_BUCKETS = 5
DEFAULT_BUF_CAP = 500

METRIC_TYPES = ("counter", "gauge", "observer")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem in a mapping file: 1-based line, the key path, a message, and its severity.

    >>> Finding(1, "defaults", "bad", "error").severity
    'error'
    """

    line: int
    key: str
    message: str
    severity: str = "warning"

    def format(self, source: str) -> str:
        """``FILE:LINE: severity: key: message`` (the check-mapping output line).

        >>> Finding(7, "mappings[1].name", "empty").format("m.yml")
        'm.yml:7: warning: mappings[1].name: empty'
        """
        return f"{source}:{self.line}: {self.severity}: {self.key}: {self.message}"


class MappingError(ValueError):
    """The mapping file cannot be loaded (unreadable, not YAML, or refused as statsd_exporter refuses it).

    >>> str(MappingError("m.yml", [Finding(2, "mappings[0].name", "missing", "error")]))
    'm.yml:2: error: mappings[0].name: missing'
    """

    def __init__(self, source: str, findings: list[Finding]) -> None:
        self.source = source
        self.findings = findings
        super().__init__("\n".join(f.format(source) for f in findings))


@dataclasses.dataclass(frozen=True)
class SummaryOptions:
    """Objectives and window of a summary (0 means the Go client's default).

    >>> SummaryOptions().quantiles[0]
    (0.5, 0.05)
    """

    quantiles: Tuple[Tuple[float, float], ...] = DEFAULT_QUANTILES
    max_age_s: float = 0.0
    age_buckets: int = 0
    buf_cap: int = 0


@dataclasses.dataclass(frozen=True)
class Defaults:
    """The file's ``defaults:`` section, with statsd_exporter's fallbacks filled in.

    >>> Defaults().match_type, Defaults().buckets[-1]
    ('glob', 10)
    """

    observer_type: str = ""
    match_type: str = "glob"
    glob_disable_ordering: bool = False
    ttl_s: float = 0.0
    buckets: Tuple[float, ...] = DEFAULT_BUCKETS
    summary: SummaryOptions = SummaryOptions()


@dataclasses.dataclass
class Rule:
    """One entry of ``mappings:`` as statsd_exporter reads it (after defaults are applied).

    >>> Rule(index=0, line=3, match="a.*", name="x").action
    'map'
    """

    index: int
    line: int
    match: str
    name: str
    match_type: str = "glob"
    action: str = "map"
    match_metric_type: str = ""
    labels: dict = dataclasses.field(default_factory=dict)
    help: str = ""
    observer_type: str = ""
    buckets: Tuple[float, ...] | None = None
    summary: SummaryOptions | None = None
    ttl_s: float = 0.0
    scale: float | None = None
    honor_labels: bool = False
    regex: re.Pattern | None = None
    key_lines: dict = dataclasses.field(default_factory=dict)

    def line_of(self, key: str) -> int:
        """The line where ``key`` was written in this rule (the rule's line if absent).

        >>> Rule(0, 3, "a", "b", key_lines={"name": 4}).line_of("name"), Rule(0, 3, "a", "b").line_of("ttl")
        (4, 3)
        """
        return self.key_lines.get(key, self.line)


@dataclasses.dataclass
class MappingConfig:
    """A loaded mapping file: defaults, rules in file order, the source name, and non-fatal findings.

    >>> MappingConfig(Defaults(), []).source
    '<mapping>'
    """

    defaults: Defaults
    rules: list
    source: str = "<mapping>"
    findings: list = dataclasses.field(default_factory=list)
