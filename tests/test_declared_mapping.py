"""gen-mapping, check-mapping --declared: declarations -> generated rules -> the embedded exporter's series.

The generated file loads clean, and through it the embedded exporter exports exactly the declared names,
types, help texts, buckets and quantiles (read with prometheus_client's parser); every way a mapping can
drift from the declarations is one finding line naming the file, the line and the metric; the shipped
exporter-mapping.yml agrees with the request metrics' declarations.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from statsd_instrument import Client, Counter, Gauge, Histogram, Summary
from statsd_instrument.exporter import Exporter
from statsd_instrument.mapping import check, parse_mapping
from statsd_instrument.mapping.declared import disagreements, mapping_text
from tests.helpers import REPO, http_get

APP = "tests.apps.declared_app"


def cli(*args: str) -> subprocess.CompletedProcess:
    """``statsd-instrument ARGS`` in a new interpreter (declaring modules are not imported in this one)."""
    return subprocess.run(
        [sys.executable, "-m", "statsd_instrument.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def families(url: str) -> dict:
    status, body = http_get(url)
    assert status == 200
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def samples(family) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}


def test_generated_rules_make_the_exporter_export_exactly_the_declared_series(tmp_path):
    client = Client(protocol="null", strict=True)  # re-pointed at the exporter below
    orders = Counter(
        "shop_orders_total", "Orders by status.", tags={"status": ("paid", "failed")}, client=client
    )
    checkout = Histogram(
        "checkout.seconds",  # a dotted statsd name, exported under its declared Prometheus name
        "Checkout time by step.",
        tags=("step",),
        buckets=(0.01, 0.1, 1),
        prometheus_name="shop_checkout_seconds",
        client=client,
    )
    lookup = Summary(
        "shop_lookup_seconds", "Lookup time.", quantiles=((0.5, 0.05), (0.9, 0.01)), client=client
    )
    queue = Gauge("shop_queue_depth", "Jobs waiting.", tags=("queue",), client=client)
    path = tmp_path / "generated.yml"
    path.write_text(mapping_text([orders, checkout, lookup, queue]))
    assert check.main([str(path)]) == 0  # no finding at all

    with Exporter(path, udp="127.0.0.1:0", web="127.0.0.1:0") as exporter:
        client.configure(port=exporter.udp_port, strict=True)
        for _ in range(3):
            orders.increment(status="paid")
        for seconds in (0.005, 0.05, 0.05, 0.5, 5):
            checkout.observe(seconds, step="pay")
        lookup.observe(0.2)
        queue.set(4, queue="mail")
        client.flush()
        assert exporter.wait_for_packets(1)
        found = families(exporter.metrics_url)
    client.close()

    assert (
        found["shop_orders"].type == "counter" and found["shop_orders"].documentation == "Orders by status."
    )
    # "failed" was never incremented: its zero start went out with the first line
    assert samples(found["shop_orders"]) == {
        ("shop_orders_total", (("status", "paid"),)): 3.0,
        ("shop_orders_total", (("status", "failed"),)): 0.0,
    }
    hist = found["shop_checkout_seconds"]
    assert hist.type == "histogram" and hist.documentation == "Checkout time by step."
    buckets = {
        float(dict(labels)["le"]): v
        for (name, labels), v in samples(hist).items()
        if name.endswith("_bucket")
    }
    assert buckets == {0.01: 1.0, 0.1: 3.0, 1.0: 4.0, float("inf"): 5.0}  # exactly the declared bounds
    assert samples(hist)[("shop_checkout_seconds_count", (("step", "pay"),))] == 5.0
    assert samples(hist)[("shop_checkout_seconds_sum", (("step", "pay"),))] == pytest.approx(5.605)
    summary = found["shop_lookup_seconds"]
    assert summary.type == "summary"
    assert {
        dict(labels).get("quantile") for (name, labels), _ in samples(summary).items() if name == summary.name
    } == {
        "0.5",
        "0.9",
    }
    assert samples(found["shop_queue_depth"]) == {("shop_queue_depth", (("queue", "mail"),)): 4.0}
    assert found["shop_queue_depth"].type == "gauge"


DRIFTS = [
    # (what changes in the generated file, the finding's line, what the finding says)
    (
        ("    match_metric_type: counter\n", "    match_metric_type: gauge\n"),
        5,
        "e2e_orders_total: the rule maps it as a gauge; declared a counter at tests/apps/declared_app.py:",
    ),
    (
        ("buckets: [0.005, 0.05, 0.5]", "buckets: [0.005, 0.5]"),
        13,
        "buckets [0.005, 0.5] in the mapping; declared",
    ),
    (
        (
            "observer_type: histogram\n    histogram_options:\n      buckets: [0.005, 0.05, 0.5]",
            "observer_type: summary",
        ),
        12,
        "exported as a summary; declared a histogram",
    ),
    (
        ('name: "e2e_checkout_seconds"', 'name: "checkout_seconds"'),
        10,
        "exported as 'checkout_seconds'; declared",
    ),
    (
        ('help: "Orders by status."', 'help: "Orders."'),
        7,
        "help 'Orders.' in the mapping; declared 'Orders by status.'",
    ),
]


@pytest.mark.e2e  # runs the CLI in a new interpreter
@pytest.mark.parametrize("change, line, message", DRIFTS, ids=["type", "buckets", "observer", "name", "help"])
def test_check_mapping_declared_reports_each_drift_with_file_line_and_metric(tmp_path, change, line, message):
    generated = cli("gen-mapping", APP)
    assert generated.returncode == 0, generated.stderr
    path = tmp_path / "mapping.yml"
    assert cli("check-mapping", "--declared", APP, str(_write(path, generated.stdout))).returncode == 0
    drifted = generated.stdout.replace(*change)
    assert drifted != generated.stdout
    result = cli("check-mapping", str(_write(path, drifted)), "--declared", APP)
    assert result.returncode == 1
    assert result.stdout.count("\n") == 1, result.stdout  # one problem, one line
    assert result.stdout.startswith(f"{path}:{line}: error: declared e2e_"), result.stdout
    assert message in result.stdout


@pytest.mark.e2e  # runs the CLI in a new interpreter
def test_check_mapping_declared_names_the_declaration_when_no_rule_maps_it(tmp_path):
    generated = cli("gen-mapping", APP).stdout
    without_checkout = generated.split('  - match: "e2e_checkout_seconds"')[0]
    result = cli("check-mapping", str(_write(tmp_path / "m.yml", without_checkout)), "--declared", APP)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"tests/apps/declared_app.py:{_line_of('CHECKOUT = Histogram(')}: "
        "error: declared e2e_checkout_seconds: "
        f"no rule in {tmp_path / 'm.yml'} maps 'e2e_checkout_seconds' (histogram); run statsd-instrument "
        "gen-mapping"
    ]


@pytest.mark.e2e  # runs the CLI in a new interpreter
def test_gen_mapping_and_check_mapping_refuse_a_module_that_cannot_be_imported():
    result = cli("gen-mapping", "tests.apps.no_such_module")
    assert result.returncode == 2 and "cannot import tests.apps.no_such_module" in result.stderr
    result = cli("check-mapping", "exporter-mapping.yml", "--declared", "tests.apps.declared_app:nope")
    assert result.returncode == 2 and "has no attribute 'nope'" in result.stdout


def test_the_shipped_mapping_exports_the_request_metrics_as_declared(capsys):
    assert (
        check.main([str(REPO / "exporter-mapping.yml"), "--declared", "statsd_instrument.http_metrics"]) == 0
    )
    assert capsys.readouterr().out == ""


def test_declared_request_metrics_drift_from_a_mapping_is_caught():
    from statsd_instrument import http_metrics

    text = (REPO / "exporter-mapping.yml").read_text().replace("2.5, 5, 10]", "2.5, 5]")
    problems = disagreements([http_metrics.REQUEST_DURATION], parse_mapping(text, "m.yml"))
    assert len(problems) == 1 and "declared request_latency_seconds: buckets" in problems[0]


def _write(path, text: str):
    path.write_text(text)
    return path


def _line_of(text: str) -> int:
    lines = (REPO / "tests" / "apps" / "declared_app.py").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.startswith(text))
