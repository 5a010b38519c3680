"""``statsd-instrument explain [--mapping FILE] LINE...``: what a mapping does to statsd lines.

For each line (arguments, or stdin lines): the parse errors if any, then for each sample the rule that
matched (with its file line), the resulting series and labels, or why it is unmapped, dropped or refused.
``explain_line`` is the same thing as data, for other tools. It lives with the exporter because it shows
what the exporter does to a line (its line parser, then the mapping, then its label rendering); the mapping
package stays below the exporter.

>>> from statsd_instrument.mapping import parse_mapping, Resolver
>>> resolver = Resolver(parse_mapping("mappings:\\n- match: req.*\\n  name: http_${1}_total\\n", "m.yml"))
>>> print("\\n".join(describe_line("req.get:1|c|#code:200", resolver)))
req.get:1|c|#code:200
  counter req.get -> http_get_total{code="200"} counter (rule 0 at m.yml:2)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from statsd_instrument.exporter.lineparser import DEFAULT_FLAGS, parse_line
from statsd_instrument.exporter.stats import Stats
from statsd_instrument.exporter.store import render_labels
from statsd_instrument.mapping import MappingError, Outcome, Resolver, load_mapping, parse_mapping


@dataclasses.dataclass
class LineReport:
    """One statsd line explained: parse errors (reason -> count) and each event with its outcome.

    >>> LineReport("x", {"malformed_line": 1}, []).errors
    {'malformed_line': 1}
    """

    line: str
    errors: dict
    events: list  # [(Event, Outcome)]


def explain_line(line: str, resolver: Resolver, flags=None) -> LineReport:
    """Parse ``line`` like the exporter and resolve each event against ``resolver``'s mapping.

    >>> report = explain_line("a:1|c|#k", Resolver(parse_mapping("{}")))
    >>> report.errors, [o.status for _, o in report.events]
    ({'tag_error': 1}, ['unmapped'])
    """
    stats = Stats()
    events = parse_line(line, flags or DEFAULT_FLAGS, stats)
    errors = dict(stats.sample_errors)
    if stats.tag_errors:
        errors["tag_error"] = stats.tag_errors
    if not events and not errors and line:
        errors["no_event"] = 1
    return LineReport(line, errors, [(e, resolver.resolve(e.name, e.metric_type, e.labels)) for e in events])


def _series(outcome: Outcome) -> str:
    return f"{outcome.name}{render_labels(tuple(sorted(outcome.labels.items())))}"


def describe_line(line: str, resolver: Resolver) -> list:
    """Human-readable lines explaining one statsd line.

    >>> describe_line("x:1|s", Resolver(parse_mapping("{}")))
    ['x:1|s', '  not accepted: illegal_event']
    """
    report = explain_line(line, resolver)
    source = resolver.config.source
    out = [line]
    for reason, count in sorted(report.errors.items()):
        out.append(f"  not accepted: {reason}" + (f" (x{count})" if count > 1 else ""))
    for event, outcome in report.events:
        head = f"  {event.metric_type} {event.name}"
        where = f"rule {outcome.rule.index} at {source}:{outcome.rule.line}" if outcome.rule else ""
        if outcome.status == "mapped":
            out.append(f"{head} -> {_series(outcome)} {outcome.kind} ({where})")
        elif outcome.status == "unmapped":
            out.append(
                f"{head} -> {_series(outcome)} {outcome.kind} (unmapped: no rule matched, name escaped)"
            )
        elif outcome.status == "dropped":
            out.append(f"{head} -> dropped ({where}, action: drop)")
        else:
            out.append(f"{head} -> refused: {outcome.reason}" + (f" ({where})" if where else ""))
    return out


def main(argv: list[str]) -> int:
    """Explain each line given (or read from stdin); 2 if the mapping cannot be loaded.

    >>> main(["a.b:1|g"])
    a.b:1|g
      gauge a.b -> a_b gauge (unmapped: no rule matched, name escaped)
    0
    """
    parser = argparse.ArgumentParser(
        prog="statsd-instrument explain", description="Show what a mapping does to statsd lines."
    )
    parser.add_argument("--mapping", help="mapping file (default: none, every metric unmapped)")
    parser.add_argument("lines", nargs="*", metavar="LINE", help="statsd lines (default: read stdin)")
    args = parser.parse_args(argv)
    try:
        config = load_mapping(args.mapping) if args.mapping else parse_mapping("{}", "(no mapping)")
    except MappingError as err:
        print(err, file=sys.stderr)
        return 2
    resolver = Resolver(config)
    lines = args.lines or [ln.rstrip("\r\n") for ln in sys.stdin]
    for line in lines:
        print("\n".join(describe_line(line, resolver)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
