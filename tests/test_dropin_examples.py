"""The documented example programs of datadog and of the statsd package run unchanged after the import swap.

The examples are taken from the installed packages' own README (their distribution metadata), and from
docs/migrating.md's "Before and after"; each runs as written (its fixed addresses included) in a private
network namespace (tests/dropin_examples.py), once on the original and once with only the import changed,
each into an embedded exporter with the shipped mapping, and the exported series must be the same.
README examples that only configure a client get one probe call appended, the same on both sides.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.e2e  # each example runs in its own interpreter, in a private network namespace

PROBE = 'from datadog import statsd\nstatsd.increment("readme.probe", tags=["example:yes"])\nstatsd.flush()\n'


def _unshare() -> list:
    return ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--net", "--map-root-user"]


def run_examples(examples: list) -> list:
    """Per example, the series its exporter exposed (see tests/dropin_examples.py)."""
    done = subprocess.run(
        [*_unshare(), sys.executable, "-m", "tests.dropin_examples"],
        input=json.dumps(examples),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def datadog_readme_examples() -> list:
    """The python blocks of datadog's README that use its statsd client (not its HTTP API)."""
    readme = importlib.metadata.metadata("datadog").get_payload()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    return [b for b in blocks if "initialize" in b and "api." not in b]


def statsd_readme_examples() -> list:
    """The ``>>>`` examples of the statsd package's README, each as a program."""
    readme = importlib.metadata.metadata("statsd").get_payload()
    examples = []
    for block in re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", readme):
        lines = [ln.strip()[4:] for ln in block.splitlines() if ln.strip().startswith(">>> ")]
        if lines:
            examples.append("\n".join(lines) + "\n")
    return examples


def swap_datadog(program: str) -> str:
    return program.replace("from datadog import", "from statsd_instrument.datadog import")


def swap_statsd(program: str) -> str:
    return program.replace("import statsd\n", "import statsd_instrument.legacy as statsd\n")


def _address(program: str) -> int:
    found = re.search(r"(?:statsd_port\"?[:=]\s*|, )(\d{4,5})", program)
    return int(found.group(1)) if found else 8125


def test_readme_examples_of_both_packages_export_the_same_series_after_the_import_swap(tmp_path):
    datadog_examples, statsd_examples = datadog_readme_examples(), statsd_readme_examples()
    assert len(datadog_examples) >= 3 and len(statsd_examples) >= 2  # the READMEs still have them
    socket_path = str(tmp_path / "dsd.sock")
    examples = []
    for program in datadog_examples:
        uses_socket = "PATH_TO_SOCKET" in program
        common = {"port": _address(program), "socket": socket_path if uses_socket else None}
        prelude = f"PATH_TO_SOCKET = {socket_path!r}\n" if uses_socket else ""  # the README's placeholder
        examples.append({"program": prelude + program + PROBE, **common})
        examples.append({"program": prelude + swap_datadog(program + PROBE), **common})
    for program in statsd_examples:
        examples.append({"program": program, "port": _address(program)})
        examples.append({"program": swap_statsd(program), "port": _address(program)})
    results = run_examples(examples)
    for index in range(0, len(examples), 2):
        original, ours = results[index], results[index + 1]
        assert ours == original and original, (examples[index]["program"], original, ours)
        assert original[0][0] != "error", original
    statsd_series = {name for result in results[2 * len(datadog_examples) :] for name, _, _ in result}
    assert {"foo_total", "foo_bar_total", "stats_timed_count"} <= statsd_series


def _migrating_programs() -> tuple:
    text = (REPO / "docs" / "migrating.md").read_text()
    section = text.split("### Before and after", 1)[1].split("\n### ", 1)[0]
    before, after = re.findall(r"```python\n(.*?)```", section, re.S)
    return before, after


def test_migrating_guide_before_and_after_differ_only_in_the_import_and_export_the_same_series():
    before, after = _migrating_programs()
    assert after == swap_datadog(before) and after != before
    probe = (
        "client = app.test_client()\n"
        "assert client.get('/checkout/3').data == b'ok'\n"
        "assert client.get('/checkout/5').data == b'ok'\n"
        "statsd.flush()\n"
    )
    original, ours = run_examples(
        [{"program": program, "probe": probe, "port": 9125} for program in (before, after)]
    )
    assert original and original[0][0] != "error", original
    timers = ("checkout_duration_seconds", "shop_db_query_time")
    timer_free = lambda result: [s for s in result if not s[0].startswith(timers)]  # noqa: E731
    assert timer_free(ours) == timer_free(original)
    ours_by_key = {(name, tuple(map(tuple, labels))): value for name, labels, value in ours}
    theirs_by_key = {(name, tuple(map(tuple, labels))): value for name, labels, value in original}
    labels = (("payment_method", "card"), ("service", "shop"), ("status", "paid"), ("team", "checkout"))
    assert ours_by_key[("orders_total", labels)] == 2
    step = (("service", "shop"), ("step", "pay"), ("team", "checkout"))
    assert (
        ours_by_key[("checkout_duration_seconds_count", step)]
        == theirs_by_key[("checkout_duration_seconds_count", step)]
        == 2
    )
    # datadog's timed sends seconds typed ms: its sum reads 1000x too small; ours is real seconds
    ours_sum, theirs_sum = (
        by[("checkout_duration_seconds_sum", step)] for by in (ours_by_key, theirs_by_key)
    )
    assert ours_sum > 0 and 0 < theirs_sum * 10 < ours_sum
