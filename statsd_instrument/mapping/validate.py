"""Build a ``MappingConfig`` from parsed YAML, checking it as statsd_exporter does and noting what it lets by.

Errors are what the exporter refuses at load time (``--check-config`` fails); warnings are what it accepts
and regrets later. Both carry the line and key path, so ``check-mapping`` can print every one of them.

>>> from statsd_instrument.mapping.yamlload import load_yaml
>>> config, findings = build_config(load_yaml("mappings:\\n- match: a.*\\n  name: x_${1}\\n  ttl: 60\\n"))
>>> config.rules[0].name, [f.format("m.yml") for f in findings]
('x_${1}', ['m.yml:4: warning: mappings[0].ttl: integer ttl 60 is read as nanoseconds; write 60s'])
"""

from __future__ import annotations

import re
from typing import Any

from statsd_instrument.mapping.gosyntax import parse_go_duration
from statsd_instrument.mapping.model import (
    DEFAULT_BUCKETS,
    DEFAULT_QUANTILES,
    Defaults,
    Finding,
    MappingConfig,
    Rule,
    SummaryOptions,
)
from statsd_instrument.mapping.templates import compile_re2, expand_glob, glob_references, regex_references
from statsd_instrument.mapping.yamlload import LinedDict, LinedList

_SEGMENT = r"[a-zA-Z_](?:-?[a-zA-Z0-9_])*"
_LATER_SEGMENT = r"[a-zA-Z0-9_](?:-?[a-zA-Z0-9_])*"
GLOB_MATCH_RE = re.compile(rf"^(?:\*|{_SEGMENT})(?:\.\*|\.{_LATER_SEGMENT})*\Z")
_TEMPLATE_REF = r"\$\{?[0-9]+\}?"
METRIC_NAME_RE = re.compile(rf"^(?:[a-zA-Z_]|{_TEMPLATE_REF})(?:[a-zA-Z0-9_]|{_TEMPLATE_REF})*\Z")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]+\Z")
_ONE_CHAR_LABEL_RE = re.compile(r"^[a-zA-Z_]\Z")

TOP_KEYS = {"defaults", "mappings"}
DEFAULTS_KEYS = {
    "observer_type",
    "timer_type",
    "buckets",
    "quantiles",
    "match_type",
    "glob_disable_ordering",
    "ttl",
    "summary_options",
    "histogram_options",
}
RULE_KEYS = {
    "match",
    "name",
    "labels",
    "observer_type",
    "timer_type",
    "buckets",
    "quantiles",
    "match_type",
    "help",
    "action",
    "match_metric_type",
    "ttl",
    "summary_options",
    "histogram_options",
    "scale",
    "honor_labels",
}
HISTOGRAM_KEYS = {"buckets", "native_histogram_bucket_factor", "native_histogram_max_buckets"}
SUMMARY_KEYS = {"quantiles", "max_age", "age_buckets", "buf_cap"}
DEPRECATED = {
    "timer_type": "deprecated 'timer_type' (since 0.17, support to be removed): write 'observer_type'",
    "buckets": "deprecated top-level 'buckets' (since 0.15, support to be removed): "
    "write 'histogram_options: {buckets: [...]}'",
    "quantiles": "deprecated top-level 'quantiles' (since 0.15, support to be removed): "
    "write 'summary_options: {quantiles: [...]}'",
}


class _Builder:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def error(self, line: int, key: str, message: str) -> None:
        self.findings.append(Finding(line, key, message, "error"))

    def warn(self, line: int, key: str, message: str) -> None:
        self.findings.append(Finding(line, key, message, "warning"))

    # --- typed field readers: each reports the field path and the bad value -------------------------
    def check_keys(self, node: LinedDict, allowed: set, path: str) -> None:
        for key, dup_line in node.duplicates:
            self.error(dup_line, f"{path}{key}", f"key {key!r} is given twice")
        for key in node:
            if key not in allowed:
                close = [k for k in sorted(allowed) if _similar(str(key), k)]
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.warn(
                    node.key_lines[key],
                    f"{path}{key}",
                    f"unknown key {key!r}{hint}: statsd_exporter ignores unknown keys, so it has no effect",
                )
            elif key in DEPRECATED and path.count(".") <= 1 and "options" not in path:
                self.warn(node.key_lines[key], f"{path}{key}", DEPRECATED[key])

    def string(self, node: LinedDict, key: str, path: str) -> str:
        if key not in node or node[key] is None:
            return ""
        value = node[key]
        if isinstance(value, (dict, list)):
            self.error(node.key_lines[key], path + key, f"expected a string, got {_show(value)}")
            return ""
        return node.raw.get(key, str(value))

    def boolean(self, node: LinedDict, key: str, path: str) -> bool:
        value = node.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            self.error(node.key_lines[key], path + key, f"expected true or false, got {_show(value)}")
            return False
        return value

    def number(self, value: Any, line: int, path: str) -> float | None:
        if isinstance(value, bool) or value is None:
            self.error(line, path, f"expected a number, got {_show(value)}")
            return None
        if isinstance(value, (int, float)):
            return float(value)
        # Go's YAML refuses a string (quoted "0.5", or text that is no YAML number) for a number field
        self.error(line, path, f"expected a number, got {_show(value)}")
        return None

    def integer(self, node: LinedDict, key: str, path: str) -> int:
        value = node.get(key)
        if value is None:
            return 0
        # an unsigned 32-bit field: Go's YAML truncates a float into it
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 2**32:
            self.error(
                node.key_lines[key], path + key, f"expected a non-negative integer, got {_show(value)}"
            )
            return 0
        return int(value)

    def duration(self, node: LinedDict, key: str, path: str) -> float:
        value = node.get(key)
        line = node.key_lines.get(key, node.line)
        if value is None:
            return 0.0
        if isinstance(value, (bool, dict, list)) or (
            isinstance(value, (int, float)) and not -(2**63) <= value < 2**63
        ):
            self.error(line, path + key, f"expected a duration like '60s' or '10m', got {_show(value)}")
            return 0.0
        if isinstance(value, (int, float)):
            # Go's YAML stores a number into a time.Duration as nanoseconds (a float truncated)
            kind = "integer" if isinstance(value, int) else "number"
            self.warn(line, path + key, f"{kind} {key} {value} is read as nanoseconds; write {value}s")
            return int(value) / 1e9
        try:
            return parse_go_duration(str(value))
        except ValueError as err:
            self.error(line, path + key, str(err))
            return 0.0

    def number_list(self, node: LinedDict, key: str, path: str) -> tuple | None:
        value = node.get(key)
        if value is None:
            return None
        if not isinstance(value, LinedList):
            self.error(node.key_lines[key], path + key, f"expected a list of numbers, got {_show(value)}")
            return None
        numbers = []
        for i, item in enumerate(value):
            parsed = self.number(item, value.item_lines[i], f"{path}{key}[{i}]")
            if parsed is not None:
                numbers.append(parsed)
        return tuple(numbers)

    def quantiles(self, node: LinedDict, key: str, path: str) -> tuple | None:
        value = node.get(key)
        if value is None:
            return None
        if not isinstance(value, LinedList):
            self.error(
                node.key_lines[key], path + key, f"expected a list of {{quantile, error}}, got {value!r}"
            )
            return None
        out = []
        for i, item in enumerate(value):
            item_path = f"{path}{key}[{i}]"
            if not isinstance(item, LinedDict):
                self.error(value.item_lines[i], item_path, f"expected {{quantile, error}}, got {_show(item)}")
                continue
            self.check_keys(item, {"quantile", "error"}, item_path + ".")
            q = self.number(item.get("quantile", 0), item.key_lines.get("quantile", item.line), item_path)
            e = self.number(item.get("error", 0), item.key_lines.get("error", item.line), item_path)
            if q is not None and e is not None:
                if not 0 <= q <= 1:
                    self.warn(item.line, item_path + ".quantile", f"quantile {q} is outside [0, 1]")
                out.append((q, e))
        return tuple(out)

    def bucket_lint(self, buckets: tuple | None, line: int, path: str) -> None:
        if not buckets:
            return
        if any(b != b for b in buckets):
            self.warn(line, path, "a NaN bucket bound makes the histogram invalid")
        if list(buckets) != sorted(buckets):
            self.warn(
                line,
                path,
                f"buckets {list(buckets)} are not sorted: statsd_exporter crashes on the first observation",
            )
        elif len(set(buckets)) != len(buckets):
            self.warn(
                line, path, "buckets contain duplicates: statsd_exporter crashes on the first observation"
            )

    def histogram_options(self, node: Any, line: int, path: str) -> tuple | None:
        if not isinstance(node, LinedDict):
            self.error(line, path, f"expected a mapping with 'buckets', got {_show(node)}")
            return None
        self.check_keys(node, HISTOGRAM_KEYS, path + ".")
        buckets = self.number_list(node, "buckets", path + ".")
        self.bucket_lint(buckets, node.key_lines.get("buckets", line), path + ".buckets")
        return buckets

    def summary_options(self, node: Any, line: int, path: str) -> SummaryOptions | None:
        if not isinstance(node, LinedDict):
            self.error(line, path, f"expected a mapping with 'quantiles', got {_show(node)}")
            return None
        self.check_keys(node, SUMMARY_KEYS, path + ".")
        quantiles = self.quantiles(node, "quantiles", path + ".")
        return SummaryOptions(
            quantiles=quantiles or (),
            max_age_s=self.duration(node, "max_age", path + "."),
            age_buckets=self.integer(node, "age_buckets", path + "."),
            buf_cap=self.integer(node, "buf_cap", path + "."),
        )

    def observer_type(self, node: LinedDict, path: str) -> str:
        value = self.string(node, "observer_type", path) or self.string(node, "timer_type", path)
        if value not in ("", "histogram", "summary"):
            key = "observer_type" if node.get("observer_type") else "timer_type"
            self.error(
                node.key_lines[key], path + key, f"invalid observer type {value!r} (histogram or summary)"
            )
            return ""
        return value

    # --- sections --------------------------------------------------------------------------------------
    def defaults(self, node: Any) -> Defaults:
        if node is None:
            return Defaults()
        if not isinstance(node, LinedDict):
            self.error(getattr(node, "line", 1), "defaults", f"expected a mapping, got {_show(node)}")
            return Defaults()
        self.check_keys(node, DEFAULTS_KEYS, "defaults.")
        match_type = self.string(node, "match_type", "defaults.") or "glob"
        if match_type not in ("glob", "regex"):
            self.error(
                node.key_lines["match_type"], "defaults.match_type", f"invalid match type {match_type!r}"
            )
            match_type = "glob"
        buckets = None
        if "histogram_options" in node:
            buckets = self.histogram_options(
                node["histogram_options"], node.key_lines["histogram_options"], "defaults.histogram_options"
            )
        legacy_buckets = self.number_list(node, "buckets", "defaults.")
        self.bucket_lint(legacy_buckets, node.key_lines.get("buckets", 0), "defaults.buckets")
        summary = SummaryOptions(())
        if "summary_options" in node:
            summary = (
                self.summary_options(
                    node["summary_options"], node.key_lines["summary_options"], "defaults.summary_options"
                )
                or summary
            )
        legacy_quantiles = self.quantiles(node, "quantiles", "defaults.")
        if not summary.quantiles and legacy_quantiles:
            # v0.28.0 replaces the whole summary_options by the legacy quantiles (max_age etc. reset)
            summary = SummaryOptions(legacy_quantiles)
        elif not summary.quantiles:
            summary = SummaryOptions(DEFAULT_QUANTILES, *_summary_rest(summary))
        return Defaults(
            observer_type=self.observer_type(node, "defaults."),
            match_type=match_type,
            glob_disable_ordering=self.boolean(node, "glob_disable_ordering", "defaults."),
            ttl_s=self.duration(node, "ttl", "defaults."),
            buckets=buckets or legacy_buckets or DEFAULT_BUCKETS,
            summary=summary,
        )

    def rule(self, index: int, node: Any, line: int, defaults: Defaults) -> Rule | None:
        path = f"mappings[{index}]."
        if not isinstance(node, LinedDict):
            self.error(line, path[:-1], f"expected a mapping with 'match' and 'name', got {_show(node)}")
            return None
        self.check_keys(node, RULE_KEYS, path)
        rule = Rule(index=index, line=node.line, match=self.string(node, "match", path), name="")
        rule.key_lines = dict(node.key_lines)
        rule.name = self.string(node, "name", path)
        rule.help = self.string(node, "help", path)
        self._labels(rule, node, path)
        if not rule.name:
            self.error(rule.line_of("name"), path + "name", "metric mapping didn't set a metric name")
        elif not METRIC_NAME_RE.match(rule.name):
            self.error(
                rule.line_of("name"),
                path + "name",
                f"metric name {rule.name!r} is invalid: letters, digits, _ and ${{n}} references only",
            )
        rule.match_type = self.string(node, "match_type", path) or defaults.match_type
        if rule.match_type not in ("glob", "regex"):
            self.error(
                rule.line_of("match_type"), path + "match_type", f"invalid match type {rule.match_type!r}"
            )
        rule.action = self.string(node, "action", path) or "map"
        if rule.action not in ("map", "drop"):
            self.error(
                rule.line_of("action"), path + "action", f"invalid action {rule.action!r} (map or drop)"
            )
        self._match(rule, path)
        rule.match_metric_type = self.string(node, "match_metric_type", path)
        if rule.match_metric_type == "timer":
            self.warn(
                rule.line_of("match_metric_type"),
                path + "match_metric_type",
                "deprecated 'match_metric_type: timer' (an alias of observer since 0.17): write observer",
            )
            rule.match_metric_type = "observer"
        elif rule.match_metric_type not in ("", "counter", "gauge", "observer"):
            self.error(
                rule.line_of("match_metric_type"),
                path + "match_metric_type",
                f"invalid metric type {rule.match_metric_type!r} (counter, gauge or observer)",
            )
            rule.match_metric_type = ""
        self._observer(rule, node, path, defaults)
        rule.ttl_s = self.duration(node, "ttl", path) or defaults.ttl_s
        if (
            "ttl" in node
            and rule.ttl_s
            and rule.ttl_s == defaults.ttl_s
            and not self.duration(node, "ttl", path)
        ):
            self.warn(
                rule.line_of("ttl"), path + "ttl", "a ttl of 0 does not disable defaults.ttl: it inherits it"
            )
        if "scale" in node:
            rule.scale = self.number(node["scale"], rule.line_of("scale"), path + "scale")
        rule.honor_labels = self.boolean(node, "honor_labels", path)
        self._reference_lint(rule, path)
        return rule

    def _labels(self, rule: Rule, node: LinedDict, path: str) -> None:
        labels = node.get("labels")
        if labels is None:
            return
        if not isinstance(labels, LinedDict):
            self.error(
                rule.line_of("labels"), path + "labels", f"expected a mapping of labels, got {_show(labels)}"
            )
            return
        for key, dup_line in labels.duplicates:
            self.error(dup_line, f"{path}labels.{key}", f"label {key!r} is given twice")
        for key in labels:
            line = labels.key_lines[key]
            key_text = str(key)
            if isinstance(labels[key], (dict, list)):
                self.error(
                    line, f"{path}labels.{key_text}", f"expected a string value, got {_show(labels[key])}"
                )
                continue
            if not LABEL_NAME_RE.match(key_text):
                hint = ""
                if _ONE_CHAR_LABEL_RE.match(key_text):
                    hint = ": label names need at least 2 characters (older exporters accepted 1)"
                self.error(line, f"{path}labels.{key_text}", f"invalid label key {key_text!r}{hint}")
                continue
            if key_text.startswith("__"):
                self.warn(
                    line,
                    f"{path}labels.{key_text}",
                    "label names starting with __ are reserved: every scrape fails once such a series exists",
                )
            rule.labels[key_text] = labels.raw.get(key, "" if labels[key] is None else str(labels[key]))

    def _match(self, rule: Rule, path: str) -> None:
        if rule.match_type == "regex":
            try:
                rule.regex = compile_re2(rule.match)
            except ValueError as err:
                self.error(rule.line_of("match"), path + "match", f"invalid regex {rule.match!r}: {err}")
        elif rule.match_type == "glob" and not GLOB_MATCH_RE.match(rule.match):
            self.error(
                rule.line_of("match"),
                path + "match",
                f"invalid match {rule.match!r}: dot-separated words or whole-segment '*'",
            )

    def _observer(self, rule: Rule, node: LinedDict, path: str, defaults: Defaults) -> None:
        rule.observer_type = self.observer_type(node, path) or defaults.observer_type
        hist = None
        if "histogram_options" in node:
            hist = self.histogram_options(
                node["histogram_options"], rule.line_of("histogram_options"), path + "histogram_options"
            )
        legacy_buckets = self.number_list(node, "buckets", path)
        self.bucket_lint(legacy_buckets, rule.line_of("buckets"), path + "buckets")
        summary = None
        if "summary_options" in node:
            summary = self.summary_options(
                node["summary_options"], rule.line_of("summary_options"), path + "summary_options"
            )
        legacy_quantiles = self.quantiles(node, "quantiles", path)
        if hist and legacy_buckets:
            self.error(
                rule.line_of("buckets"),
                path + "buckets",
                "cannot use buckets in both the top level and histogram options",
            )
        if summary and summary.quantiles and legacy_quantiles:
            self.error(
                rule.line_of("quantiles"),
                path + "quantiles",
                "cannot use quantiles in both the top level and summary options",
            )
        if rule.observer_type == "histogram":
            if "summary_options" in node:
                self.error(
                    rule.line_of("summary_options"),
                    path + "summary_options",
                    "cannot use histogram observer and summary options at the same time",
                )
            rule.buckets = legacy_buckets or hist or defaults.buckets
        elif rule.observer_type == "summary":
            if "histogram_options" in node:
                self.error(
                    rule.line_of("histogram_options"),
                    path + "histogram_options",
                    "cannot use summary observer and histogram options at the same time",
                )
            base = summary or SummaryOptions(())
            ds = defaults.summary
            rule.summary = SummaryOptions(
                quantiles=legacy_quantiles or base.quantiles or ds.quantiles,
                max_age_s=base.max_age_s or ds.max_age_s,
                age_buckets=base.age_buckets or ds.age_buckets,
                buf_cap=base.buf_cap or ds.buf_cap,
            )
        else:
            # Observer type left to the defaults at event time: keep what the rule says.
            rule.buckets = legacy_buckets or hist or None
            if summary:  # v0.28.0 reads top-level quantiles only for summary rules: here they are ignored
                rule.summary = SummaryOptions(
                    summary.quantiles or defaults.summary.quantiles, *_summary_rest(summary)
                )
            if hist is not None or summary is not None:
                self.warn(
                    rule.line,
                    path[:-1],
                    "histogram_options/summary_options without an observer_type here or in defaults: "
                    "timers become summaries",
                )

    def _reference_lint(self, rule: Rule, path: str) -> None:
        templates = [("name", rule.name)] + [(f"labels.{k}", v) for k, v in rule.labels.items()]
        if rule.match_type == "glob":
            captures = rule.match.split(".").count("*")
            for key, template in templates:
                refs = glob_references(template)
                for ref in refs:
                    self._check_ref(
                        rule, path + key, ref, ref.isdigit() and 1 <= int(ref) <= captures, captures
                    )
                if refs and "%" in template:
                    self.warn(
                        rule.line_of("labels" if key.startswith("labels") else "name"),
                        path + key,
                        f"'%' in {template!r} is a Go fmt verb once the template has a reference: "
                        f"statsd_exporter renders it as {expand_glob(template, ['x'] * captures)!r} "
                        "(with x for each capture)",
                    )
        elif rule.regex is not None:
            groups = rule.regex.groups
            names = set(rule.regex.groupindex)
            for key, template in templates:
                for ref in regex_references(template):
                    ok = (ref.isdigit() and int(ref) <= groups) or ref in names
                    self._check_ref(rule, path + key, ref, ok, groups)

    def _check_ref(self, rule: Rule, key: str, ref: str, ok: bool, groups: int) -> None:
        if ok:
            return
        line = rule.line_of(key.split(".")[-1] if key.endswith("name") else "labels")
        digits = re.match(r"[0-9]+", ref)
        if digits and digits.group() != ref:
            self.warn(
                line,
                key,
                f"'${ref}' is read as a reference to a group named {ref!r}, which is empty: "
                f"write '${{{digits.group()}}}{ref[len(digits.group()) :]}'",
            )
        else:
            self.warn(
                line, key, f"'${ref}' refers to a capture group that does not exist (the match has {groups})"
            )


def _summary_rest(options: SummaryOptions) -> tuple:
    return options.max_age_s, options.age_buckets, options.buf_cap


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _similar(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 2:
        return False
    common = sum(1 for x, y in zip(a, b) if x == y)
    return common >= max(len(a), len(b)) - 2 or sorted(a) == sorted(b)


def build_config(data: Any, source: str = "<mapping>") -> tuple[MappingConfig, list[Finding]]:
    """Read parsed YAML into a ``MappingConfig``; returns it and every finding (errors and warnings).

    >>> from statsd_instrument.mapping.yamlload import load_yaml
    >>> build_config(load_yaml("[]"))[1][0].message
    "expected a mapping with 'mappings', got []"
    """
    builder = _Builder()
    if data is None:
        data = LinedDict()
    if not isinstance(data, LinedDict):
        builder.error(1, "(top level)", f"expected a mapping with 'mappings', got {_show(data)}")
        return MappingConfig(Defaults(), [], source), builder.findings
    builder.check_keys(data, TOP_KEYS, "")
    defaults = builder.defaults(data.get("defaults"))
    rules = []
    raw_rules = data.get("mappings")
    if isinstance(raw_rules, LinedList):
        for index, node in enumerate(raw_rules):
            rule = builder.rule(index, node, raw_rules.item_lines[index], defaults)
            if rule is not None:
                rules.append(rule)
    elif raw_rules is not None:
        builder.error(
            data.key_lines["mappings"], "mappings", f"expected a list of rules, got {_show(raw_rules)}"
        )
    config = MappingConfig(defaults, rules, source)
    config.findings = [f for f in builder.findings if f.severity == "warning"]
    return config, builder.findings
