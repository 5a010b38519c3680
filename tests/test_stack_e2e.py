"""End to end: real Prometheus scraping the embedded exporter fed by the example app under uwsgi (5 workers).

One stack serves the whole module. Prometheus runs the shipped config with the target rewritten to the
exporter's port, 1 s scrape and evaluation intervals, and the shipped rules with their windows shortened
(tests/stack_files.SHORT_WINDOWS) so the error-budget alerts can fire within seconds; promtool's unit tests
(test_stack_static) check the same rules with their real windows. It alerts a real Alertmanager (Debian's)
running the shipped routing with 1 s timers (ALERTMANAGER_TIMERS), every receiver a webhook to an
AlertReceiver in this process.
"""

from __future__ import annotations

import json
import math
import re
import socket
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from statsd_instrument.guard import EXPORTER_OWN_FAMILIES
from statsd_instrument.stack import alertmanager as am
from statsd_instrument.stack import summary
from statsd_instrument.stack.alert_receiver import AlertReceiver, Notification
from statsd_instrument.stack.commands import app_argv, exporter_argv, find_uwsgi
from statsd_instrument.stack.files import find_stack_files
from statsd_instrument.stack.prometheus import PrometheusAPI, derive_config, prometheus_argv
from statsd_instrument.stack.traffic import ERROR_HEAVY_MIX, Route, Traffic, TrafficStats
from tests import stack_files as sf
from tests.helpers import ManagedProcess, free_port, http_get, scrape, wait_for_port, wait_until

pytestmark = pytest.mark.e2e

SERVICE = "flask_app"  # the example app's STATSD_SERVICE default
#: the shipped Alertmanager routing with its timers in seconds: a group is notified 1 s after it changes
ALERTMANAGER_TIMERS = {
    "group_wait": "1s",
    "group_interval": "1s",
    "repeat_interval": "1h",
    "resolve_timeout": "5s",
}
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")


@dataclass
class Stack:
    app_url: str
    metrics_url: str
    prom: PrometheusAPI
    work: Path
    receiver: AlertReceiver
    alertmanager_url: str


@dataclass
class KnownMix:
    sent: TrafficStats
    exporter_scrapes: list
    start: float
    end: float
    counted: float | None


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    work = tmp_path_factory.mktemp("stack")
    files = find_stack_files()
    statsd_port, web_port = free_port(socket.SOCK_DGRAM), free_port()
    app_port, prom_port, am_port = free_port(), free_port(), free_port()
    alertmanager = am.find_alertmanager()
    assert alertmanager, "Alertmanager not installed: scripts/system-deps.sh installs prometheus-alertmanager"
    receiver = AlertReceiver().start()
    started: list[ManagedProcess] = []
    try:
        exporter = ManagedProcess(
            exporter_argv(files.mapping, statsd_port, web_port), log=work / "exporter.log"
        )
        started.append(exporter)
        wait_for_port(web_port, 30, exporter.proc)
        app = ManagedProcess(
            app_argv(find_uwsgi(), files.uwsgi_ini, app_port),
            env={"STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(statsd_port)},
            log=work / "uwsgi.log",
        )
        started.append(app)
        wait_for_port(app_port, 30, app.proc)
        am_config = am.derive_config(files.alertmanager_yml, work, receiver.url, timers=ALERTMANAGER_TIMERS)
        alertmanager_proc = ManagedProcess(
            am.alertmanager_argv(alertmanager, am_config, work / "alertmanager", am_port),
            log=work / "alertmanager.log",
        )
        started.append(alertmanager_proc)
        am_url = f"http://127.0.0.1:{am_port}"
        assert wait_until(lambda: ready(f"{am_url}/-/ready"), 30), alertmanager_proc.output()
        config = derive_config(
            files.prometheus_yml,
            work,
            f"127.0.0.1:{web_port}",
            scrape_interval="1s",
            evaluation_interval="1s",
            rule_files=sf.derive_short_window_rules(work / "rules"),
            alertmanager_target=f"127.0.0.1:{am_port}",
        )
        prom = ManagedProcess(
            prometheus_argv("prometheus", config, work / "data", prom_port), log=work / "prometheus.log"
        )
        started.append(prom)
        assert wait_until(lambda: ready(f"http://127.0.0.1:{prom_port}/-/ready"), 60), prom.output()
        api = PrometheusAPI(f"http://127.0.0.1:{prom_port}")
        assert wait_until(lambda: api.targets_up() == 1, 30), prom.output()
        yield Stack(
            f"http://127.0.0.1:{app_port}",
            f"http://127.0.0.1:{web_port}/metrics",
            api,
            work,
            receiver,
            am_url,
        )
    finally:
        for proc in reversed(started):
            proc.stop()
        receiver.stop()


@pytest.fixture(scope="module")
def known_mix(stack):
    """1200 requests of the demo's mix at 50 req/s (24 s), the exporter scraped once a second meanwhile."""
    start = time.time()
    traffic = Traffic(stack.app_url, rate_per_s=50, total=1200, seed=7).start()
    scrapes = []
    while traffic.running():
        scrapes.append(scrape(stack.metrics_url))
        time.sleep(1)
    sent = traffic.wait()
    end = time.time()
    counted = wait_until(lambda: stack.prom.scalar("sum(http_requests_total)") == sent.answered, 30)
    return KnownMix(
        sent, scrapes, start, end, stack.prom.scalar("sum(http_requests_total)") if counted else None
    )


def test_prometheus_counts_exactly_the_requests_sent(stack, known_mix):
    sent = known_mix.sent
    assert sent.no_answer == 0
    assert {200, 404, 405, 500} <= set(sent.by_status)
    assert known_mix.counted == sent.answered == 1200
    by_status = {
        int(labels["status"]): value
        for labels, value in stack.prom.query("sum by (status) (http_requests_total)", at=known_mix.end + 5)
    }
    assert by_status == dict(sent.by_status)


def test_no_counter_ever_decreases_over_20_scrapes(stack, known_mix):
    scrapes = known_mix.exporter_scrapes
    assert len(scrapes) >= 20
    for before, after in zip(scrapes, scrapes[1:]):
        for key, value in before.items():
            if key[0].startswith("http_") and key[0].endswith(COUNTER_SUFFIXES):
                assert after.get(key, -1) >= value, (key, value, after.get(key))
    # what Prometheus stored over the same period, one point per 1 s scrape
    series = stack.prom.query_range(
        '{__name__=~"http_requests_total|http_request_duration_seconds_(bucket|count|sum)"}',
        known_mix.start,
        known_mix.end,
        1,
    )
    assert len(series) > 20
    longest = max(len(values) for _, values in series)
    assert longest >= 20
    for labels, values in series:
        numbers = [v for _, v in values]
        assert numbers == sorted(numbers), labels
    resets = stack.prom.scalar(
        f"sum(resets(http_requests_total[{int(known_mix.end - known_mix.start) + 5}s]))", at=known_mix.end
    )
    assert resets == 0


def test_histogram_quantile_answers_in_seconds(stack, known_mix):
    window = f"[{int(known_mix.end - known_mix.start) + 3}s]"
    at = known_mix.end + 2
    p50 = stack.prom.scalar(
        f"histogram_quantile(0.5, sum by (le) (increase(http_request_duration_seconds_bucket{window})))", at
    )
    p99 = stack.prom.scalar(
        f"histogram_quantile(0.99, sum by (le) (increase(http_request_duration_seconds_bucket{window})))", at
    )
    mean = stack.prom.scalar(
        f"sum(increase(http_request_duration_seconds_sum{window}))"
        f" / sum(increase(http_request_duration_seconds_count{window}))",
        at,
    )
    assert p50 is not None and p99 is not None and mean is not None
    # each request's server-side duration lies inside its client-side round trip, so in seconds the mean is
    # below the client's mean round trip; milliseconds read as seconds would be a thousand times above it
    client_mean = known_mix.sent.round_trip_s / known_mix.sent.answered
    assert 0 < mean < client_mean
    assert 0 < p50 <= p99 <= 10  # within the mapping's finite buckets (seconds)


FAST_BURN, SLOW_BURN = "HTTPErrorBudgetFastBurn", "HTTPErrorBudgetSlowBurn"
#: successes only: once the errors stop, the short windows clean up and the fast burn resolves
HEALTHY_MIX = (Route(1, "GET", "/test/"),)


def alertmanager_alerts(stack: Stack, alertname: str) -> list[dict]:
    """Alertmanager's own view of the alerts named ``alertname`` (API v2), with their ``status.state``."""
    status, body = http_get(f"{stack.alertmanager_url}/api/v2/alerts?filter=alertname%3D%22{alertname}%22")
    assert status == 200, body
    return json.loads(body)


def slow_burn_inhibited(stack: Stack) -> bool:
    return any(
        a["labels"]["service"] == SERVICE
        and a["status"]["state"] == "suppressed"
        and a["status"]["inhibitedBy"]
        for a in alertmanager_alerts(stack, SLOW_BURN)
    )


def is_page(notification: Notification, status: str) -> bool:
    return notification.status == status and notification.alertnames == {FAST_BURN}


def test_fast_burn_pages_through_alertmanager_inhibits_the_ticket_and_resolves(stack, known_mix):
    def firing(alertname: str) -> list[dict]:
        return [
            a
            for a in stack.prom.firing_alerts()
            if a["labels"]["alertname"] == alertname and a["labels"]["service"] == SERVICE
        ]

    assert not firing(FAST_BURN)  # the demo's mix (8% errors) stays under the fast-burn thresholds
    before = len(stack.receiver.notifications())
    traffic = Traffic(stack.app_url, rate_per_s=40, mix=ERROR_HEAVY_MIX, seed=3).start()
    try:
        page = stack.receiver.wait_for(lambda n: is_page(n, "firing"), 90, since=before)
        assert page, (stack.prom.firing_alerts(), stack.receiver.notifications())
        fired = firing(FAST_BURN)
        # the slow burn fires too (its thresholds are lower), but Alertmanager holds it back: inhibited by
        # the page, and it stays so over several 1 s group intervals in which a notification could go out
        assert wait_until(lambda: slow_burn_inhibited(stack), 30), alertmanager_alerts(stack, SLOW_BURN)
        observed_until = time.monotonic() + 3
        while time.monotonic() < observed_until:
            assert firing(SLOW_BURN) and slow_burn_inhibited(stack), alertmanager_alerts(stack, SLOW_BURN)
            time.sleep(0.5)
        since_page = stack.receiver.notifications()[stack.receiver.notifications().index(page) :]
    finally:
        sent = traffic.stop()
    assert sent.server_errors > sent.answered / 2
    assert fired and fired[0]["labels"]["severity"] == "page"
    assert fired[0]["labels"]["slo"] == "http-availability-98"
    # one notification per group: alertname + service + severity, to the "page" receiver
    assert page.receiver == "page"
    assert page.group_labels == {"alertname": FAST_BURN, "service": SERVICE, "severity": "page"}
    assert len(page.alerts) == 1
    alert = page.alerts[0]
    assert alert["labels"]["slo"] == "http-availability-98" and alert["status"] == "firing"
    assert alert["annotations"]["runbook_url"] == "docs/alerts.md#httperrorbudgetfastburn"
    assert not [n for n in since_page if SLOW_BURN in n.alertnames], since_page  # inhibited: no ticket

    # the errors stop: the short windows clean up, the fast burn resolves and the page says so
    healthy = Traffic(stack.app_url, rate_per_s=40, mix=HEALTHY_MIX, seed=5).start()
    try:
        resolved = stack.receiver.wait_for(lambda n: is_page(n, "resolved"), 90, since=before)
    finally:
        healthy.stop()
    assert resolved, stack.receiver.notifications()
    assert resolved.receiver == "page" and resolved.group_labels == page.group_labels
    assert resolved.alerts[0]["status"] == "resolved"
    assert not firing(FAST_BURN)


def _returns_numbers(api: PrometheusAPI, expr: str):
    """Non-NaN samples of ``expr`` (errors propagate: an invalid query fails the test)."""
    return [value for _, value in api.query(expr) if not math.isnan(value)]


def _reads_exporter_errors(expr: str) -> bool:
    """Whether an alert reads only the exporter's own error counters (no series on a healthy exporter)."""
    names = set(re.findall(r"\bstatsd_exporter_\w+", expr))
    assert names <= set(EXPORTER_OWN_FAMILIES), names - set(EXPORTER_OWN_FAMILIES)  # names of the Go exporter
    return bool(names)


def test_every_rule_and_dashboard_query_evaluates_and_returns_data(stack, known_mix):
    queries = [(f"rule {r['record']}", r["expr"]) for r in sf.rules() if "record" in r]
    alerts = [
        (f"alert {r['alert']} (bool)", sf.with_bool_comparisons(r["expr"]))
        for r in sf.rules()
        if "alert" in r
    ]
    queries += [(what, expr) for what, expr in alerts if not _reads_exporter_errors(expr)]
    for _, expr in alerts:  # the rest must at least be valid PromQL that Prometheus evaluates
        stack.prom.query(expr)
    queries += [(f"panel {title}", expr) for title, expr in sf.dashboard_panel_queries()]
    queries += [(f"demo summary {name}", expr) for name, expr in summary.QUERIES.items()]
    assert len(queries) >= 35
    traffic = Traffic(stack.app_url, rate_per_s=30, seed=11).start()  # fresh data in every short window
    try:
        for what, expr in queries:
            assert wait_until(lambda expr=expr: _returns_numbers(stack.prom, expr), 20), f"{what}: {expr}"
        for variable, selector, label in sf.dashboard_variable_selectors():
            values = {labels.get(label) for labels, _ in stack.prom.query(selector)}
            assert values - {None}, f"variable {variable}: {selector} has no {label!r} label"
    finally:
        traffic.stop()


def test_demo_mix_reaches_every_endpoint_and_status(stack, known_mix):
    seen = {
        (labels["endpoint"], labels["status"])
        for labels, _ in stack.prom.query(f'http_requests_total{{service="{SERVICE}"}}')
    }
    endpoints = {endpoint for endpoint, _ in seen}
    assert {"/test/", "/test1/", "/user/<int:user_id>"} <= endpoints
    assert ("/test1/", "500") in seen
    assert {status for _, status in seen} >= {"200", "404", "405", "500"}


def test_every_uwsgi_worker_reports_its_drops_as_one_series_per_reason(stack, known_mix):
    from statsd_instrument.transport import TELEMETRY_REASONS

    def reported():
        return stack.prom.query(f'statsd_instrument_client_dropped_total{{service="{SERVICE}"}}')

    assert wait_until(lambda: {labels["reason"] for labels, _ in reported()} >= set(TELEMETRY_REASONS), 30)
    for labels, value in reported():  # summed over the workers by the exporter: no per-process label
        assert set(labels) == {"__name__", "job", "instance", "service", "reason"}, labels
        assert value == 0, labels  # the example app drops nothing
