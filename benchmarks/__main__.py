"""Run every ``benchmarks/bench_*.py`` module and write ``docs/benchmarks.md``.

Each module has ``TITLE: str`` and ``run() -> str`` returning a Markdown section (tables of medians and
ratios, measured side by side in one run). ``python -m benchmarks bench_client`` runs only the named ones
and keeps the other sections of the existing file.
"""

from __future__ import annotations

import datetime
import importlib
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks.md"
MARK = "<!-- section: {} -->"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def existing_sections() -> dict[str, str]:
    if not OUT.exists():
        return {}
    parts = re.split(r"<!-- section: (\w+) -->\n", OUT.read_text())
    return {parts[i]: parts[i + 1].rstrip() + "\n" for i in range(1, len(parts) - 1, 2)}


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    sections = existing_sections()
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        body = module.run()
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        sections[name] = f"## {module.TITLE}\n\nMeasured {stamp}.\n\n{body.strip()}\n"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    head = (
        "# Benchmarks\n\n"
        f"Command: `make bench` (or `.venv/bin/python -m benchmarks bench_NAME`). Commit {commit or '?'}.\n"
        f"Machine: {machine()}.\n\n"
        "These machines are shared and noisy: every comparison is measured side by side in one run, "
        "interleaved, and reported as medians and ratios.\n\n"
    )
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(head + "\n".join(MARK.format(n) + "\n" + sections[n] for n in sorted(sections)))
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
