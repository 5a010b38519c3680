"""suggest-mapping proposes rules that check-mapping accepts and that map a whole legacy stream.

The stream is generated: request counters and timers ``<app>.<view>.<METHOD>.<status>`` for two apps,
``<app>.<thing>.count`` counters, per-queue gauges, per-table query timers, cache hit/miss counters, a
one-word counter and a set. Every check of the proposal goes through the project's mapping engine
(``statsd_instrument.mapping``), the one the exporter uses.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time

import pytest

from statsd_instrument.legacy import suggest
from statsd_instrument.mapping import Resolver, load_mapping
from tests.helpers import REPO, ManagedProcess, free_port, python_bin

KINDS = {"c": "counter", "g": "gauge", "ms": "observer"}


def legacy_stream(seed: int = 3) -> list:
    """Lines a legacy app sends, with values; every name appears at least once."""
    rng = random.Random(seed)
    lines = []
    for app in ("shop", "blog"):
        for view in ("cart", "checkout", "home", "user_detail"):
            for method in ("GET", "POST", "DELETE"):
                for status in ("200", "302", "404", "500"):
                    if rng.random() < 0.5:
                        lines.append(f"{app}.{view}.{method}.{status}:1|c")
                        lines.append(f"{app}.{view}.{method}.{status}:{rng.random() * 100:.3f}|ms")
        for thing in ("signups", "logins", "orders"):
            lines.append(f"{app}.{thing}.count:{rng.randint(1, 5)}|c|@0.5")
        for queue in ("emails", "sms", "push"):
            lines.append(f"{app}.queue.{queue}.size:{rng.randint(0, 9)}|g")
        for table in ("users", "orders", "items"):
            lines.append(f"{app}.db.query.{table}:{rng.random() * 10:.3f}|ms")
        lines += [f"{app}.cache.hits:1|c", f"{app}.cache.misses:1|c"]
    lines += ["signups:1|c", "visitors:alice|s", "not a statsd line"]
    return lines


def metrics_of(lines: list) -> set:
    """{(name, kind)} of the exportable lines."""
    out = set()
    for line in lines:
        name, _, rest = line.partition(":")
        kind = KINDS.get(rest.split("|")[1]) if "|" in rest else None
        if kind:
            out.add((name, kind))
    return out


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python_bin("statsd-instrument"), *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.e2e
def test_proposal_passes_check_mapping_and_maps_the_whole_stream(tmp_path):
    lines = legacy_stream()
    (tmp_path / "traffic.txt").write_text("\n".join(lines) + "\n")
    proposed = tmp_path / "proposed.yml"
    done = run_cli("suggest-mapping", str(tmp_path / "traffic.txt"), "--output", str(proposed))
    assert done.returncode == 0, done.stderr
    assert "check:" not in done.stderr  # no name lands elsewhere than its rule says
    assert (
        "skipped 1 line(s)" in done.stderr
        and "cannot be exported by statsd_exporter: visitors" in done.stderr
    )

    checked = run_cli("check-mapping", str(proposed))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    resolver = Resolver(load_mapping(proposed))
    outcomes = {(name, kind): resolver.resolve(name, kind, {}) for name, kind in metrics_of(lines)}
    unmapped = [key for key, outcome in outcomes.items() if outcome.status != "mapped"]
    assert unmapped == []
    # varying segments became labels: the request names land on the request-metric contract
    for (name, kind), outcome in outcomes.items():
        parts = name.split(".")
        if len(parts) == 4 and parts[2] in ("GET", "POST", "DELETE"):
            want = "http_requests_total" if kind == "counter" else "http_request_duration_seconds"
            assert outcome.name == want, name
            assert outcome.labels == dict(zip(("service", "endpoint", "method", "status"), parts)), name
        if len(parts) == 4 and parts[1] == "queue":
            assert outcome.labels == {"service": parts[0], "queue": parts[2]}, name
    # one series family per template, not one per name
    families = {outcome.name for outcome in outcomes.values()}
    assert len(families) <= 8 < len(outcomes)


@pytest.mark.e2e
def test_coverage_report_lists_what_the_shipped_mapping_leaves_and_proposal_completes_it(tmp_path):
    lines = legacy_stream(seed=5)
    (tmp_path / "traffic.txt").write_text("\n".join(lines) + "\n")
    shipped = REPO / "exporter-mapping.yml"
    proposed = tmp_path / "proposed.yml"
    done = run_cli(
        "suggest-mapping", str(tmp_path / "traffic.txt"), "--mapping", str(shipped), "--output", str(proposed)
    )
    assert done.returncode == 0, done.stderr

    resolver = Resolver(load_mapping(shipped))
    names = {name for name, _ in metrics_of(lines)}
    left = sorted(
        {name for name, kind in metrics_of(lines) if resolver.resolve(name, kind, {}).status != "mapped"}
    )
    reported = sorted(
        line.split("unmapped: ", 1)[1].split(" (", 1)[0]
        for line in done.stderr.splitlines()
        if "unmapped: " in line
    )
    assert reported == sorted([*left, "visitors"])  # the set is never mapped
    total = len(names) + 1  # and the set
    assert f"{total - len(left) - 1} of {total} names mapped" in done.stderr
    assert any(name.endswith(".cache.hits") for name in left) and not any(".GET." in name for name in left)

    # the shipped mapping plus the proposed rules: accepted, and every name of the stream mapped
    combined = tmp_path / "combined.yml"
    rules = proposed.read_text().split("mappings:\n", 1)[1]
    combined.write_text(shipped.read_text().rstrip("\n") + "\n" + rules)
    assert run_cli("check-mapping", str(combined)).returncode == 0
    resolver = Resolver(load_mapping(combined))
    assert [key for key in metrics_of(lines) if resolver.resolve(*key, {}).status != "mapped"] == []


@pytest.mark.e2e
def test_listen_mode_collects_udp_traffic_for_the_given_seconds(tmp_path):
    port = free_port(socket.SOCK_DGRAM)
    out = tmp_path / "proposed.yml"
    log = tmp_path / "suggest.log"
    proc = ManagedProcess(
        [python_bin("statsd-instrument"), "suggest-mapping", "--listen", f"127.0.0.1:{port}",
         "--seconds", "3", "--output", str(out)],
        log=log,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while "listening on" not in proc.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as app:
            app.sendto("\n".join(legacy_stream()[:40]).encode(), ("127.0.0.1", port))
        assert proc.proc.wait(30) == 0, proc.output()
    finally:
        proc.stop()
    assert "read 40 lines" in proc.output()
    resolver = Resolver(load_mapping(out))
    assert all(resolver.resolve(*key, {}).status == "mapped" for key in metrics_of(legacy_stream()[:40]))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["traffic.txt", "--listen", "9999"], "either FILE or --listen"),
        ([], "either FILE or --listen"),
        (["missing.txt"], "cannot read traffic from 'missing.txt'"),
        (["traffic.txt", "--mapping", "missing.yml"], "cannot load --mapping 'missing.yml'"),
    ],
)
def test_bad_arguments_exit_2_with_a_message_naming_the_value(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "traffic.txt").write_text("a.b:1|c\n")
    assert suggest.main(args) == 2
    assert message in capsys.readouterr().err
