"""``statsd-instrument check-mapping FILE...``: lint statsd_exporter mapping files.

Reports what statsd_exporter refuses (``error``) and what it accepts but regrets later (``warning``):
unsorted buckets, ``$1_suffix`` templates, dead glob rules, deprecated and unknown keys, integer ttl,
short or reserved label names, references to missing capture groups. One ``FILE:LINE: ...`` line per
finding. Exit status: 0 clean, 1 findings, 2 a file could not be read or parsed as YAML.

>>> import tempfile, os
>>> with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
...     _ = f.write("mappings:\\n- match: a.*\\n  name: x_$1_total\\n")
>>> main([f.name]) # doctest: +ELLIPSIS
/...yml:3: warning: mappings[0].name: '$1_total' is read as a reference to a group named '1_total', \
which is empty: write '${1}_total'
1
>>> os.unlink(f.name)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from statsd_instrument.mapping import lint_text


def main(argv: list[str]) -> int:
    """Lint each file; print findings; return 0 (clean), 1 (findings) or 2 (unreadable).

    >>> main(["/nonexistent.yml"])
    /nonexistent.yml:0: error: (file): cannot read: No such file or directory
    2
    """
    parser = argparse.ArgumentParser(
        prog="statsd-instrument check-mapping", description="Lint statsd_exporter mapping files."
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="mapping file(s) to check")
    parser.add_argument("--errors-only", action="store_true", help="only report what the exporter refuses")
    parser.add_argument(
        "--declared",
        action="append",
        default=[],
        metavar="MODULE[:ATTR]",
        help="also check that the file exports these declared metrics as declared (repeatable)",
    )
    parser.add_argument("--prefix", default="", help="with --declared: the client's STATSD_PREFIX, if any")
    args = parser.parse_args(argv)
    status = 0
    declared = []
    if args.declared:
        from statsd_instrument.mapping.declared import load_declared

        try:
            declared = load_declared(args.declared)
        except ValueError as err:
            print(f"statsd-instrument check-mapping: --declared {err}")
            return 2
    for name in args.files:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            print(f"{name}:0: error: (file): cannot read: {getattr(err, 'strerror', None) or err}")
            status = 2
            continue
        config, findings = lint_text(text, name)
        if args.errors_only:
            findings = [f for f in findings if f.severity == "error"]
        for finding in findings:
            print(finding.format(name))
        if any(f.key == "(yaml)" for f in findings):
            status = 2
            continue
        problems: list[str] = []
        if declared and not any(f.severity == "error" for f in findings):
            from statsd_instrument.mapping.declared import disagreements

            problems = disagreements(declared, config, args.prefix)
            for problem in problems:
                print(problem)
        if (findings or problems) and status == 0:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
