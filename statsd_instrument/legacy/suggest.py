"""``statsd-instrument suggest-mapping``: propose mapping rules from legacy statsd traffic.

Reads statsd lines from a file (``-`` for stdin) or listens on a UDP port for some seconds, finds the
templates in the dotted names (varying segments become labels, see :mod:`statsd_instrument.legacy.templates`)
and prints a mapping file proposal (YAML) that ``check-mapping`` accepts. With ``--mapping FILE`` it first
reports which names that mapping leaves unmapped and proposes rules for those only. The report goes to
stderr, the YAML to stdout or ``--output``.

>>> import tempfile, os
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = os.path.join(tmp, "traffic.txt")
...     with open(path, "w") as f:
...         _ = f.write("shop.cart.GET.200:1|c\\nshop.cart.POST.201:1|c\\nshop.home.GET.200:1|c\\n")
...     main([path, "--quiet"])  # doctest: +ELLIPSIS
# Proposed by `statsd-instrument suggest-mapping` from 3 lines (3 distinct names).
...
  - match: "shop.*.*.*"
    match_metric_type: counter
    name: "http_requests_total"
    labels:
      service: "shop"
      endpoint: "${1}"
      method: "${2}"
      status: "${3}"
0
"""

from __future__ import annotations

import argparse
import collections
import json
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Iterable, TextIO

from statsd_instrument.legacy.templates import Template, find_templates
from statsd_instrument.validation import parse_host_port

KINDS = {"c": "counter", "g": "gauge", "ms": "observer", "h": "observer", "d": "observer"}
BUCKETS = "[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]"


@dataclass
class Traffic:
    """What was read: line counts per (name, statsd type), unusable lines by reason."""

    lines: int = 0
    names: collections.Counter = field(default_factory=collections.Counter)  # (name, type) -> lines
    rejected: collections.Counter = field(default_factory=collections.Counter)  # reason -> lines

    def add_line(self, line: str) -> None:
        """Count one statsd line (``name:value|type[|@rate][|#tags]``).

        >>> t = Traffic()
        >>> for line in ("a.b:1|c", "a.b:2|c|@0.5|#x:y", "bad line", "u.v:1|s"):
        ...     t.add_line(line)
        >>> dict(t.names), dict(t.rejected)
        ({('a.b', 'c'): 2, ('u.v', 's'): 1}, {'no name:value': 1})
        """
        line = line.strip()
        if not line:
            return
        self.lines += 1
        name, sep, rest = line.partition(":")
        if not sep or not name or "|" not in rest:
            self.rejected["no name:value"] += 1
            return
        metric_type = rest.split("|")[1].strip()
        if metric_type not in KINDS and metric_type != "s":
            self.rejected[f"unknown type {metric_type!r}"] += 1
            return
        self.names[(name, metric_type)] += 1

    def add_text(self, text: str) -> None:
        for line in text.splitlines():
            self.add_line(line)


def read_file(path: str) -> Traffic:
    """Traffic from a file of statsd lines (``-``: stdin).

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
    ...     _ = f.write("a.b:1|c\\na.b:2|c\\n")
    ...     f.flush()
    ...     read_file(f.name).names
    Counter({('a.b', 'c'): 2})
    """
    traffic = Traffic()
    if path == "-":
        traffic.add_text(sys.stdin.read())
    else:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                traffic.add_line(line)
    return traffic


def listen(address: str, seconds: float, out: TextIO = sys.stderr) -> Traffic:
    """Traffic received on UDP ``[host:]port`` (host defaults to 127.0.0.1) during ``seconds``.

    >>> import io
    >>> out = io.StringIO()
    >>> listen("0", 0.1, out).lines  # port 0: any free port; nobody sends
    0
    >>> out.getvalue().startswith("listening on 127.0.0.1:")
    True
    """
    host, port = parse_host_port(address if ":" in address else ":" + address, "--listen", listen=True)
    traffic = Traffic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, port))
        print(f"listening on {sock.getsockname()[0]}:{sock.getsockname()[1]} for {seconds:g}s", file=out)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(min(left, 0.5))
            try:
                data = sock.recv(65535)
            except socket.timeout:
                continue
            traffic.add_text(data.decode("utf-8", errors="replace"))
    return traffic


def propose(names: dict) -> list:
    """Templates for ``{name: set of statsd types}``, most specific first, with unique metric names.

    >>> ts = propose({"shop.db.users": {"ms"}, "shop.db.items": {"ms"}, "shop.up": {"g"}})
    >>> [(t.pattern(), t.kind, t.chosen_name) for t in ts]
    [('shop.up', 'gauge', 'shop_up'), ('shop.db.*', 'observer', 'shop_db_seconds')]
    """
    by_kind: dict = collections.defaultdict(list)
    types_of: dict = collections.defaultdict(set)
    for name, types in names.items():
        for metric_type in types:
            if metric_type in KINDS:
                by_kind[KINDS[metric_type]].append(name)
                types_of[(name, KINDS[metric_type])].add(metric_type)
    templates = []
    for kind in ("counter", "gauge", "observer"):
        for template in find_templates(by_kind[kind], kind):
            template.unit_ms = all(types_of[(n, kind)] == {"ms"} for n in template.names)
            templates.append(template)
    templates.sort(key=lambda t: (sum(s is None for s in t.segments), -len(t.names), t.pattern()))
    _make_names_unique(templates)
    return templates


def _make_names_unique(templates: list) -> None:
    # one Prometheus name must keep one type and one label set, else the exporter drops the newcomer
    seen: dict = {}
    for template in templates:
        name = template.metric_name()
        signature = (template.kind, sorted(template.labels()))
        candidate, number = name, 1
        while candidate in seen and seen[candidate] != signature:
            number += 1
            candidate = f"{name}_{number}"
        seen[candidate] = signature
        template.chosen_name = candidate


def render(templates: list, traffic: Traffic) -> str:
    """The proposal as a mapping file (YAML) that real statsd_exporter versions load.

    >>> traffic = Traffic()
    >>> traffic.add_line("shop.up:1|g")
    >>> print(render(propose({"shop.up": {"g"}}), traffic).split("mappings:")[1])
    <BLANKLINE>
      # 1 name(s), e.g. shop.up
      - match: "shop.up"
        match_metric_type: gauge
        name: "shop_up"
    <BLANKLINE>
    """
    distinct = len({name for name, _ in traffic.names})
    out = [
        f"# Proposed by `statsd-instrument suggest-mapping` from {traffic.lines} lines"
        f" ({distinct} distinct names).",
        "# Review names and labels, then append the rules to exporter-mapping.yml.",
        "defaults:",
        "  observer_type: histogram",
        "  histogram_options:",
        f"    buckets: {BUCKETS}",
        "mappings:" if templates else "mappings: []",
    ]
    for template in templates:
        examples = ", ".join(template.names[:3])
        out.append(f"  # {len(template.names)} name(s), e.g. {examples}")
        if template.is_glob_safe():
            out.append(f"  - match: {json.dumps(template.pattern())}")
        else:
            out.append(f"  - match: '{template.regex()}'")
            out.append("    match_type: regex")
        out.append(f"    match_metric_type: {template.kind}")
        out.append(f"    name: {json.dumps(template.chosen_name or template.metric_name())}")
        labels = template.labels()
        if labels:
            out.append("    labels:")
            out.extend(f"      {key}: {json.dumps(value)}" for key, value in labels.items())
    return "\n".join(out) + "\n"


def coverage(traffic: Traffic, mapping_path: str) -> tuple:
    """(covered, uncovered) ``{name: set of statsd types}`` under the mapping file.

    A name is covered when a rule maps it (or drops it on purpose); sets are never covered, the exporter
    has no sets. Raises ``MappingError`` (a ``ValueError``) if the file would be refused.

    >>> import tempfile
    >>> traffic = Traffic()
    >>> traffic.add_text("shop.cart.GET.200:1|c\\nshop.cache.hits:1|c\\nseen:x|s")
    >>> with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
    ...     _ = f.write('mappings:\\n- match: "*.*.*.*"\\n  name: "requests_total"\\n')
    ...     f.flush()
    ...     coverage(traffic, f.name)
    ({'shop.cart.GET.200': {'c'}}, {'shop.cache.hits': {'c'}, 'seen': {'s'}})
    """
    from statsd_instrument.mapping import Resolver, load_mapping

    resolver = Resolver(load_mapping(mapping_path))
    covered: dict = collections.defaultdict(set)
    uncovered: dict = collections.defaultdict(set)
    for name, metric_type in traffic.names:
        kind = KINDS.get(metric_type)
        status = resolver.resolve(name, kind, {}).status if kind else "unsupported"
        (covered if status in ("mapped", "dropped") else uncovered)[name].add(metric_type)
    return dict(covered), dict(uncovered)


def misrouted(text: str, templates: list) -> list:
    """Names of the proposal that its own rules send elsewhere (a broader glob earlier in the file).

    Every name should come out under the name its template proposes; this checks it with the mapping
    engine, so rule ordering surprises are reported instead of shipped.

    >>> traffic = Traffic()
    >>> traffic.add_line("shop.up:1|g")
    >>> templates = propose({"shop.up": {"g"}})
    >>> misrouted(render(templates, traffic), templates)
    []
    """
    from statsd_instrument.mapping import Resolver, parse_mapping

    resolver = Resolver(parse_mapping(text, "<proposal>"))
    wrong = []
    for template in templates:
        for name in template.names:
            outcome = resolver.resolve(name, template.kind, {})
            if outcome.status != "mapped" or outcome.name != template.chosen_name:
                wrong.append(f"{name} ({template.kind}) -> {outcome.name or outcome.status}")
    return wrong


def _report(traffic: Traffic, unmapped: dict, mapping: str | None, templates: list, out: TextIO) -> None:
    total = len({name for name, _ in traffic.names})
    print(f"read {traffic.lines} lines: {total} distinct names", file=out)
    for reason, count in sorted(traffic.rejected.items()):
        print(f"  skipped {count} line(s): {reason}", file=out)
    sets = sorted({name for name, metric_type in traffic.names if metric_type == "s"})
    if sets:
        print(
            f"  {len(sets)} set metric(s) (|s) cannot be exported by statsd_exporter: {', '.join(sets)}",
            file=out,
        )
    if mapping is not None:
        print(f"coverage of {mapping}: {total - len(unmapped)} of {total} names mapped", file=out)
        for name in sorted(unmapped):
            lines = sum(traffic.names[(name, t)] for t in unmapped[name])
            print(f"  unmapped: {name} ({'/'.join(sorted(unmapped[name]))}, {lines} lines)", file=out)
    print(f"proposed {len(templates)} rule(s)", file=out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="statsd-instrument suggest-mapping",
        description="Propose statsd_exporter mapping rules from legacy statsd traffic.",
    )
    parser.add_argument("file", nargs="?", help="file of statsd lines ('-' for stdin)")
    parser.add_argument(
        "--listen", metavar="[HOST:]PORT", help="listen for UDP statsd traffic instead of a file"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to listen (default 60)")
    parser.add_argument(
        "--mapping", metavar="FILE", help="report names FILE leaves unmapped; propose rules for those"
    )
    parser.add_argument("--output", metavar="FILE", help="write the proposal here instead of stdout")
    parser.add_argument("--quiet", action="store_true", help="no report on stderr")
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    """Run the command; returns the exit code (0 done, 2 bad arguments or unreadable input).

    >>> main(["/nonexistent/traffic.txt"])
    2
    """
    parser = _parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if (args.file is None) == (args.listen is None):
        parser.print_usage(sys.stderr)
        print("suggest-mapping: give either FILE or --listen [HOST:]PORT", file=sys.stderr)
        return 2
    try:
        traffic = read_file(args.file) if args.file else listen(args.listen, args.seconds)
    except (OSError, ValueError) as exc:
        print(
            f"suggest-mapping: cannot read traffic from {args.file or args.listen!r}: {exc}", file=sys.stderr
        )
        return 2
    names: dict = collections.defaultdict(set)
    for name, metric_type in traffic.names:
        names[name].add(metric_type)
    unmapped = names
    if args.mapping:
        try:
            _, unmapped = coverage(traffic, args.mapping)
        except (OSError, ValueError) as exc:
            print(f"suggest-mapping: cannot load --mapping {args.mapping!r}: {exc}", file=sys.stderr)
            return 2
    templates = propose(unmapped)
    if not args.quiet:
        _report(traffic, unmapped, args.mapping, templates, sys.stderr)
    text = render(templates, traffic)
    if not args.quiet:
        for problem in misrouted(text, templates):
            print(f"  check: {problem}, not its proposed name", file=sys.stderr)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


__all__ = ["Template", "Traffic", "coverage", "listen", "main", "misrouted", "propose", "read_file", "render"]
