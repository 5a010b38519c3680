"""Guard rails: the exporter's own names, a second type for a name, _sum/_count/_bucket collisions."""

from __future__ import annotations

import collections
import logging
import socket
import subprocess
import sys
import time

import pytest

from statsd_instrument import Client, guard
from statsd_instrument.mapping import Resolver, load_mapping
from statsd_instrument.mapping.gosyntax import escape_metric_name
from statsd_instrument.mapping.resolve import SELF_METRIC_NAMES
from tests.helpers import REPO, scrape

KINDS = {"c": "increment", "g": "gauge", "ms": "timing", "h": "histogram", "d": "distribution"}


@pytest.fixture
def strict():
    c = Client(protocol="null", strict=True)
    yield c
    c.close()


def send(client: Client, name: str, kind: str) -> None:
    getattr(client, KINDS[kind])(name, 1)


def shipped_rules_from_file() -> tuple:
    """guard.SHIPPED_RULES as it should read for the exporter-mapping.yml in the repository."""
    config = load_mapping(REPO / "exporter-mapping.yml")
    rules = sorted(config.rules, key=lambda r: r.match_type != "glob")  # every glob before any regex (stable)
    return tuple(
        (r.match_type, r.match, r.match_metric_type, r.name, r.observer_type or config.defaults.observer_type)
        for r in rules
        if r.action == "map"
    )


def test_shipped_rules_are_the_shipped_mapping():
    expected = shipped_rules_from_file()
    assert expected == guard.SHIPPED_RULES, (
        "exporter-mapping.yml changed: set statsd_instrument.guard.SHIPPED_RULES to\n" + repr(expected)
    )
    config = load_mapping(REPO / "exporter-mapping.yml")
    assert config.defaults.observer_type == guard.SHIPPED_DEFAULT_OBSERVER
    for match_type, match, *_ in expected:  # what prometheus_name() knows how to match
        assert match_type == "regex" or "*" not in match, f"glob with a wildcard: {match}"


@pytest.mark.parametrize(
    "name",
    [
        "request_count",
        "request_latency_seconds",
        "shop.checkout.GET.200",
        "shop.signups.count",
        "shop.process_cpu_seconds.count",
        "shop.report.time",
        "go.goroutines",
        "odd--name-x",
        "2xx.rate",
        "a.b.c.count",
        "-.x.count",
    ],
)
@pytest.mark.parametrize("kind", list(KINDS))
def test_resolve_agrees_with_the_mapping_implementation(name, kind):
    resolver = Resolver(load_mapping(REPO / "exporter-mapping.yml"))
    outcome = resolver.resolve(name, guard.EVENT_TYPES[kind], {})
    assert guard.resolve(name, kind) == (outcome.name, outcome.kind)
    assert guard.escape_name(name) == escape_metric_name(name)


def test_the_emulation_refuses_every_family_of_the_real_exporter():
    assert set(guard.EXPORTER_OWN_SAMPLES) <= SELF_METRIC_NAMES


@pytest.mark.parametrize("family", sorted(guard.EXPORTER_OWN_FAMILIES))
def test_every_own_family_of_the_exporter_is_refused_in_strict_mode(strict, family):
    with pytest.raises(ValueError, match=rf"exported as {family}, a metric the exporter serves itself"):
        send(strict, family, "c" if guard.EXPORTER_OWN_FAMILIES[family] == "counter" else "g")


@pytest.mark.parametrize(
    ("name", "kind", "family"),
    [
        ("shop.process_cpu_seconds.count", "c", "process_cpu_seconds_total"),  # a shipped regex rule
        ("shop.statsd_exporter_lines.count", "c", "statsd_exporter_lines_total"),
        ("shop.go_gc.time", "ms", "go_gc_duration_seconds"),  # ${2}_duration_seconds
        ("go.goroutines", "g", "go_goroutines"),  # escaped: '.' becomes '_'
        ("process-open-fds", "g", "process_open_fds"),
        ("go_gc_duration_seconds_count", "c", "go_gc_duration_seconds"),  # a sample of a summary
        ("go_goroutines", "ms", "go_goroutines"),  # a histogram named like a gauge
    ],
)
def test_names_mapped_or_escaped_onto_an_own_family_are_refused(strict, name, kind, family):
    with pytest.raises(ValueError, match=rf"\({family}\)|exported as {family},"):
        send(strict, name, kind)


def test_prefix_counts_in_the_exported_name():
    c = Client(protocol="null", strict=True, prefix="go")
    try:
        with pytest.raises(ValueError, match="go_goroutines"):
            c.gauge("goroutines", 1)
    finally:
        c.close()


def test_production_drops_counts_per_reason_and_warns_once(production, caplog):
    with (
        caplog.at_level(logging.WARNING, logger="statsd_instrument"),
        production.capture_lines(strict=None) as lines,
    ):
        for _ in range(3):
            production.increment("go_goroutines")
            production.increment("jobs")
            production.timing("jobs", 5)
            production.timing("latency", 5)
            production.increment("latency_count")
        production.increment("fine")
        stats = production._transport.stats
    assert lines == ["jobs:1|c", "latency:5|ms"] * 3 + ["fine:1|c"]
    assert stats.invalid_reasons == {"reserved_name": 3, "type_conflict": 3, "series_collision": 3}
    warned = [r.getMessage() for r in caplog.records if r.name == "statsd_instrument"]
    assert len(warned) == 3, warned


def test_a_second_type_for_a_name_is_refused_across_clients_sending_to_one_exporter(udp_collector):
    a = Client(port=udp_collector.port, strict=True)
    b = Client(port=udp_collector.port, strict=True)
    elsewhere = Client(port=udp_collector.port + 1 if udp_collector.port < 65535 else 1, strict=True)
    try:
        a.increment("guard_test_shared_orders")
        with pytest.raises(ValueError, match=r"already sent as a counter in this process"):
            b.gauge("guard_test_shared_orders", 3)
        b.increment("guard_test_shared_orders")  # the same type from another client is fine
        elsewhere.gauge("guard_test_shared_orders", 3)  # another exporter: another set of names
    finally:
        for c in (a, b, elsewhere):
            c.close()


def test_timers_histograms_and_distributions_share_one_type(strict):
    for kind in ("ms", "h", "d"):
        send(strict, "guard_test_payload", kind)
    with pytest.raises(ValueError, match="already sent as a histogram"):
        strict.increment("guard_test_payload")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("t", "ms"), ("t_count", "c")),
        (("t", "h"), ("t_sum", "g")),
        (("t", "d"), ("t_bucket", "c")),
        (("t_count", "c"), ("t", "ms")),
        (("t_bucket", "g"), ("t", "h")),
    ],
)
def test_sum_count_bucket_collisions_are_refused_in_both_orders(first, second):
    c = Client(protocol="null")
    try:
        with c.capture_lines() as lines:
            send(c, *first)
            with pytest.raises(ValueError, match="writes a series that the"):
                send(c, *second)
        assert len(lines) == 1
    finally:
        c.close()


def test_each_capture_checks_types_afresh(strict):
    with strict.capture_lines():
        strict.increment("guard_test_reused")
    with strict.capture_lines():
        strict.gauge("guard_test_reused", 1)  # another test may use the name with another type


def test_a_name_is_checked_once_per_type(strict, monkeypatch):
    calls = []
    real = guard.check_series
    monkeypatch.setattr(guard, "check_series", lambda *a: calls.append(a[:2]) or real(*a))
    with strict.capture_lines():
        for _ in range(5):
            strict.increment("guard_test_cached")
            strict.timing("guard_test_cached_ms", 1)
    assert calls == [("guard_test_cached", "c"), ("guard_test_cached_ms", "ms")]


def test_prepared_metrics_are_guarded(strict):
    with pytest.raises(ValueError, match="serves itself"):
        strict.prepare("g", "process_open_fds")
    counter = strict.prepare("c", "guard_test_prepared")
    with pytest.raises(ValueError, match="already sent as a counter"):
        strict.prepare("ms", "guard_test_prepared")
    with strict.capture_lines() as lines:
        counter.send(2)  # rebuilt (and checked afresh) under the capture
        strict.timing("guard_test_prepared_ms", 1)
    assert lines == ["guard_test_prepared:2|c", "guard_test_prepared_ms:1|ms"]


@pytest.mark.e2e
def test_the_client_imports_no_yaml():
    code = (
        "import sys; from statsd_instrument import Client; c = Client(protocol='null');"
        "c.increment('shop.x.count'); c.timing('a.b.time', 1); print('yaml' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- end to end: the client into the embedded exporter with the shipped mapping ---------------------------

HOSTILE = [  # (name, kind, reason the client refuses it for)
    *[
        (family, "c" if kind == "counter" else "g", "reserved_name")
        for family, kind in sorted(guard.EXPORTER_OWN_FAMILIES.items())
    ],
    ("shop.process_cpu_seconds.count", "c", "reserved_name"),
    ("shop.go_gc.time", "ms", "reserved_name"),
    ("go.goroutines", "g", "reserved_name"),
    ("guard_e2e_orders", "g", "type_conflict"),
    ("guard_e2e_orders", "ms", "type_conflict"),
    ("guard_e2e_latency_count", "c", "series_collision"),
    ("guard_e2e_latency_bucket", "g", "series_collision"),
    ("guard_e2e_queue", "h", "series_collision"),
]
LEGIT = [("guard_e2e_orders", "c"), ("guard_e2e_latency", "ms"), ("guard_e2e_queue_sum", "g")]


def scrape_until(url: str, want: dict, timeout_s: float = 15.0) -> dict:
    """Scrape (each one must answer 200 and parse) until every (name, labels) in ``want`` has its value."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = scrape(url)
        if all(samples.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


@pytest.mark.e2e
def test_hostile_names_through_the_client_leave_scrapes_working_and_are_reported(exporter):
    udp, url = exporter
    c = Client(port=udp, strict=False, telemetry_interval_s=0.2)
    c.note_service("shop")
    rounds = 20
    try:
        for _ in range(rounds):
            for name, kind in LEGIT:
                getattr(c, KINDS[kind])(name, 1, tags={"route": "/a"})
            for name, kind, _ in HOSTILE:
                getattr(c, KINDS[kind])(name, 1, tags={"route": "/a"})
            c.increment("guard_e2e_tagged", tags=["route:/a", "kind:", "vip"])  # empty value, bare tag
            c.flush()
            scrape(url)  # every scrape meanwhile answers and parses
        reasons = collections.Counter(reason for _, _, reason in HOSTILE)
        reasons.update({"empty_value": 1, "bare_tag": 1})  # tags left out: the metric is kept
        want = {
            ("guard_e2e_orders_total", (("route", "/a"),)): rounds,
            ("guard_e2e_latency_count", (("route", "/a"),)): rounds,
            ("guard_e2e_queue_sum", (("route", "/a"),)): 1,
            ("guard_e2e_tagged_total", (("route", "/a"),)): rounds,
            ("statsd_exporter_tag_errors_total", ()): 0,  # no empty tag reached the exporter
            **{
                ("statsd_instrument_client_dropped_total", (("reason", r), ("service", "shop"))): n * rounds
                for r, n in reasons.items()
            },
        }
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # a legitimate line now and then carries the due report
            samples = scrape_until(url, want, timeout_s=0.3)
            if all(samples.get(k) == v for k, v in want.items()):
                break
            c.gauge("guard_e2e_queue_sum", 1, tags={"route": "/a"})
            c.flush()
    finally:
        c.close()
    for key, value in want.items():
        assert samples.get(key) == value, (key, samples.get(key))
    assert (
        samples[("statsd_instrument_client_dropped_total", (("reason", "send_failed"), ("service", "shop")))]
        == 0
    )
    written = {name for name, labels in samples if ("route", "/a") in labels}
    assert not written & set(guard.EXPORTER_OWN_SAMPLES)  # the client wrote none of the exporter's series


@pytest.mark.e2e
def test_hostile_lines_sent_raw_leave_the_embedded_exporter_scrapable(exporter):
    udp, url = exporter
    lines = [f"{name}:1|{kind}|#route:/a" for name, kind, _ in HOSTILE]
    legit = ["guard_raw_orders:1|c|#route:/a", "guard_raw_latency:5|ms|#route:/a"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(5):
            for line in legit + lines:
                sock.sendto(line.encode(), ("127.0.0.1", udp))
            scrape(url)
    samples = scrape_until(
        url,
        {
            ("guard_raw_orders_total", (("route", "/a"),)): 5,
            ("guard_raw_latency_count", (("route", "/a"),)): 5,
        },
    )
    assert samples[("guard_raw_orders_total", (("route", "/a"),))] == 5
    assert samples[("guard_raw_latency_count", (("route", "/a"),))] == 5
