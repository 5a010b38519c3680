"""Mapping rules from declared metrics (``gen-mapping``) and the check that a mapping agrees with them.

``statsd-instrument gen-mapping MODULE[:ATTR]...`` imports the modules, collects their declared metrics
(:mod:`statsd_instrument.metrics`) and prints a mapping file with one rule per metric: the declared name
matched exactly (with ``--prefix``), mapped to its Prometheus name with its type, help text, buckets or
quantiles and ttl. ``statsd-instrument check-mapping FILE --declared MODULE`` resolves each declared metric
through FILE as the exporter would and reports, one ``FILE:LINE`` line each, every disagreement: no rule,
another type, another name, other buckets, quantiles, help or ttl.

>>> from statsd_instrument.metrics import Counter, Histogram
>>> from statsd_instrument.mapping import parse_mapping
>>> ORDERS = Counter("orders_total", "Orders placed.", tags=("status",))
>>> CHECKOUT = Histogram("checkout_seconds", "Checkout time.", buckets=(0.1, 1))
>>> text = mapping_text([ORDERS, CHECKOUT])
>>> print(text.split("mappings:\\n")[1], end="")
  - match: "orders_total"
    match_metric_type: counter
    name: "orders_total"
    help: "Orders placed."
  - match: "checkout_seconds"
    match_metric_type: observer
    name: "checkout_seconds"
    help: "Checkout time."
    observer_type: histogram
    histogram_options:
      buckets: [0.1, 1]
>>> disagreements([ORDERS, CHECKOUT], parse_mapping(text, "m.yml"))
[]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any, Iterable, Sequence

from statsd_instrument.mapping.model import Finding, MappingConfig
from statsd_instrument.mapping.resolve import Resolver
from statsd_instrument.metrics import Metric, declared_in

OBSERVER_KINDS = ("histogram", "summary")


def load_declared(specs: Iterable[str]) -> list[Metric]:
    """The declared metrics named by ``MODULE`` (all of its metrics) or ``MODULE:ATTR`` (one metric, or an
    iterable of them); the current directory is importable, as with ``python -m``. Errors name the spec.

    >>> [m.name for m in load_declared(["statsd_instrument.http_metrics:REQUESTS"])]
    ['request_count']
    >>> load_declared(["statsd_instrument.http_metrics:NOPE"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: statsd_instrument.http_metrics:NOPE: module ... has no attribute 'NOPE'
    """
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    found: list[Metric] = []
    for spec in specs:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ValueError(f"{spec}: cannot import {module_name}: {err}") from None
        if not attr:
            metrics = declared_in(module)
            if not metrics:
                raise ValueError(f"{spec}: module {module_name} declares no metrics")
        else:
            if not hasattr(module, attr):
                raise ValueError(f"{spec}: module {module_name} has no attribute {attr!r}")
            value = getattr(module, attr)
            metrics = [value] if isinstance(value, Metric) else list(value) if _iterable(value) else []
            if not metrics or not all(isinstance(m, Metric) for m in metrics):
                raise ValueError(f"{spec}: {attr} is not a declared metric or a collection of them")
        found += [m for m in metrics if all(m is not seen for seen in found)]
    return found


def _iterable(value: Any) -> bool:
    return not isinstance(value, (str, bytes)) and hasattr(value, "__iter__")


def statsd_name(metric: Metric, prefix: str = "") -> str:
    """The name on the wire: the declared name after the client prefix.

    >>> from statsd_instrument.metrics import Gauge
    >>> statsd_name(Gauge("queue_depth", "Jobs waiting."), "shop")
    'shop.queue_depth'
    """
    return f"{prefix}.{metric.name}" if prefix else metric.name


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _number(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def _duration(seconds: float) -> str:
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{round(seconds * 1000)}ms"


def rule_text(metric: Metric, prefix: str = "") -> str:
    """The mapping rule of one declared metric (a YAML list item, indented for ``mappings:``).

    >>> from statsd_instrument.metrics import Summary
    >>> print(rule_text(Summary("lookup_seconds", "Lookup.", quantiles=((0.5, 0.05),), ttl_s=600)), end="")
      - match: "lookup_seconds"
        match_metric_type: observer
        name: "lookup_seconds"
        help: "Lookup."
        ttl: "600s"
        observer_type: summary
        summary_options:
          quantiles:
            - {quantile: 0.5, error: 0.05}
    """
    lines = [
        f"  - match: {_quote(statsd_name(metric, prefix))}",
        f"    match_metric_type: {metric.match_type}",
        f"    name: {_quote(metric.prometheus_name)}",
        f"    help: {_quote(metric.help)}",
    ]
    if metric.ttl_s is not None:
        lines.append(f"    ttl: {_quote(_duration(metric.ttl_s))}")
    if metric.kind == "histogram":
        lines.append("    observer_type: histogram")
        buckets = getattr(metric, "buckets", None)
        if buckets is not None:
            lines += ["    histogram_options:", f"      buckets: [{', '.join(map(_number, buckets))}]"]
    elif metric.kind == "summary":
        lines.append("    observer_type: summary")
        quantiles = getattr(metric, "quantiles", None)
        if quantiles is not None:
            lines += ["    summary_options:", "      quantiles:"]
            lines += [f"        - {{quantile: {_number(q)}, error: {_number(e)}}}" for q, e in quantiles]
    return "\n".join(lines) + "\n"


def mapping_text(metrics: Sequence[Metric], prefix: str = "", command: str = "") -> str:
    """A whole mapping file with the rules of ``metrics`` (see :func:`rule_text`)."""
    head = "# Generated from declared metrics"
    head += f" by `{command}`" if command else ""
    head += ".\n# Check it against them with `statsd-instrument check-mapping FILE --declared MODULE`.\n"
    return head + "mappings:\n" + "".join(rule_text(m, prefix) for m in metrics)


def disagreements(metrics: Sequence[Metric], config: MappingConfig, prefix: str = "") -> list[str]:
    """``FILE:LINE: error: ...`` lines, one per way ``config`` does not export ``metrics`` as declared.

    A finding about a rule names the mapping file and the rule's line; a metric no rule maps names the
    declaration's file and line.

    >>> from statsd_instrument.metrics import Counter
    >>> from statsd_instrument.mapping import parse_mapping
    >>> config = parse_mapping('mappings:\\n- match: "jobs_total"\\n  match_metric_type: gauge\\n'
    ...                        '  name: "jobs_total"\\n', "m.yml")
    >>> for line in disagreements([Counter("jobs_total", "Jobs.")], config):
    ...     print(line)  # doctest: +ELLIPSIS
    m.yml:3: error: declared jobs_total: the rule maps it as a gauge; declared a counter at <doctest ...>:1
    """
    resolver = Resolver(config)
    source = config.source
    out: list[str] = []
    for metric in metrics:
        name = statsd_name(metric, prefix)
        declared_file = _shown(metric.source[0])
        declared_at = f"{declared_file}:{metric.source[1]}"
        key = f"declared {metric.name}"
        labels = {k: "x" for k in metric.tag_keys}
        outcome = resolver.resolve(name, metric.match_type, labels)

        def finding(line: int, message: str, where: str = source) -> None:
            out.append(Finding(line, key, message, "error").format(where))  # noqa: B023

        if outcome.status == "unmapped":
            other = next(
                (
                    (kind, o.kind, o.rule)
                    for kind in ("counter", "gauge", "observer")
                    if kind != metric.match_type
                    for o in [resolver.resolve(name, kind, labels)]
                    if o.status == "mapped" and o.rule is not None  # a mapped outcome has its rule
                ),
                None,
            )
            if other is not None:
                other_type, other_kind, other_rule = other
                finding(
                    other_rule.line_of("match_metric_type"),
                    f"the rule maps it as a {_kind_word(other_type, other_kind)}; declared a {metric.kind} "
                    f"at {declared_at}",
                )
            else:
                finding(
                    metric.source[1],
                    f"no rule in {source} maps {name!r} ({metric.kind}); run statsd-instrument gen-mapping",
                    declared_file,
                )
            continue
        rule = outcome.rule
        line = rule.line if rule is not None else metric.source[1]
        if outcome.status != "mapped":
            finding(
                line, f"{name!r} is {outcome.status} by rule {rule.index if rule else '?'}: {outcome.reason}"
            )
            continue
        assert rule is not None
        if outcome.name != metric.prometheus_name:
            finding(
                rule.line_of("name"), f"exported as {outcome.name!r}; declared {metric.prometheus_name!r}"
            )
        if metric.kind in OBSERVER_KINDS and outcome.kind != metric.kind:
            finding(rule.line_of("observer_type"), f"exported as a {outcome.kind}; declared a {metric.kind}")
        if metric.kind == "histogram" and outcome.kind == "histogram":
            declared = getattr(metric, "buckets", None)
            if declared is not None and tuple(map(float, outcome.buckets)) != tuple(map(float, declared)):
                finding(
                    rule.line_of("histogram_options"),
                    f"buckets {_numbers(outcome.buckets)} in the mapping; declared {_numbers(declared)}",
                )
        if metric.kind == "summary" and outcome.kind == "summary" and outcome.summary is not None:
            declared_q = getattr(metric, "quantiles", None)
            if declared_q is not None and tuple(outcome.summary.quantiles) != tuple(declared_q):
                finding(
                    rule.line_of("summary_options"),
                    f"quantiles {list(outcome.summary.quantiles)} in the mapping; "
                    f"declared {list(declared_q)}",
                )
        if outcome.help != metric.help:
            finding(rule.line_of("help"), f"help {outcome.help!r} in the mapping; declared {metric.help!r}")
        if metric.ttl_s is not None and outcome.ttl_s != metric.ttl_s:
            finding(rule.line_of("ttl"), f"ttl {outcome.ttl_s:g}s in the mapping; declared {metric.ttl_s:g}s")
        overridden = sorted(set(metric.tag_keys) & set(rule.labels)) if not rule.honor_labels else []
        if overridden:
            finding(rule.line_of("labels"), f"the rule's labels replace the declared tags {overridden}")
    return out


def _shown(path: str) -> str:
    """``path`` relative to the current directory when it is below it (shorter findings)."""
    relative = os.path.relpath(path) if os.path.isabs(path) else path
    return path if relative.startswith("..") else relative


def _kind_word(match_type: str, kind: str) -> str:
    return kind if match_type == "observer" else match_type


def _numbers(values: Iterable[float]) -> str:
    return "[" + ", ".join(_number(v) for v in values) + "]"


def main(argv: list[str]) -> int:
    """``statsd-instrument gen-mapping``: print (or write) the rules; 0, or 2 when a module fails.

    >>> import contextlib, io
    >>> out = io.StringIO()
    >>> with contextlib.redirect_stdout(out):
    ...     status = main(["statsd_instrument.http_metrics:REQUESTS"])
    >>> status, out.getvalue().splitlines()[3]
    (0, '  - match: "request_count"')
    """
    parser = argparse.ArgumentParser(
        prog="statsd-instrument gen-mapping",
        description="Write statsd_exporter mapping rules for declared metrics (statsd_instrument.metrics).",
    )
    parser.add_argument(
        "specs", nargs="+", metavar="MODULE[:ATTR]", help="module whose metrics to map, or one attribute"
    )
    parser.add_argument("--prefix", default="", help="the client's STATSD_PREFIX, if any")
    parser.add_argument("--output", "-o", help="write to this file instead of stdout")
    args = parser.parse_args(argv)
    try:
        metrics = load_declared(args.specs)
    except ValueError as err:
        print(f"statsd-instrument gen-mapping: {err}", file=sys.stderr)
        return 2
    text = mapping_text(metrics, args.prefix, "statsd-instrument gen-mapping " + " ".join(args.specs))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
