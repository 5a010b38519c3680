"""The webhook receiver Alertmanager delivers to: in a thread (demo, tests) and as the compose bundle runs it
(one stdlib-only file)."""

from __future__ import annotations

import json
import shutil
import sys
import time
import urllib.error
import urllib.request

import pytest

from statsd_instrument.stack import alert_receiver
from statsd_instrument.stack.alert_receiver import AlertReceiver, parse_notification
from tests.helpers import ManagedProcess, free_port, http_get, wait_for_port

#: a notification as Alertmanager 0.25 sends it (fields trimmed to those it always sets)
PAYLOAD = {
    "version": "4",
    "groupKey": '{}/{severity="page"}:{alertname="HTTPErrorBudgetFastBurn", service="shop", severity="page"}',
    "receiver": "page",
    "status": "firing",
    "groupLabels": {"alertname": "HTTPErrorBudgetFastBurn", "service": "shop", "severity": "page"},
    "commonLabels": {"alertname": "HTTPErrorBudgetFastBurn", "service": "shop", "severity": "page"},
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HTTPErrorBudgetFastBurn", "service": "shop", "severity": "page"},
            "annotations": {"runbook_url": "docs/alerts.md#httperrorbudgetfastburn"},
        }
    ],
}


def post(url: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_records_each_notification_with_its_receiver_group_and_alerts():
    with AlertReceiver() as receiver:
        assert post(receiver.url, json.dumps(PAYLOAD).encode()) == (200, "ok")
        resolved = {**PAYLOAD, "status": "resolved"}
        assert post(receiver.url, json.dumps(resolved).encode())[0] == 200
        first, second = receiver.notifications()
    assert (first.receiver, first.status, second.status) == ("page", "firing", "resolved")
    assert first.group_labels == PAYLOAD["groupLabels"]
    assert first.alertnames == {"HTTPErrorBudgetFastBurn"}
    assert first.alerts[0]["annotations"]["runbook_url"].endswith("#httperrorbudgetfastburn")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"status": "firing", "alerts": "x"}', "'alerts' is missing or not a list"),
    ],
)
def test_rejects_what_is_not_a_webhook_payload_with_400_saying_why(body, error):
    with AlertReceiver() as receiver:
        status, text = post(receiver.url, body)
        assert status == 400 and error in text
        assert receiver.notifications() == []


def test_answers_health_and_404_elsewhere():
    with AlertReceiver() as receiver:
        base = receiver.url.rsplit("/", 1)[0]
        assert http_get(f"{base}/health") == (200, b"ok")
        assert http_get(f"{base}/other")[0] == 404
        assert post(f"{base}/other", b"{}")[0] == 404


def test_wait_for_returns_the_first_match_after_since_or_none_at_the_deadline():
    with AlertReceiver() as receiver:
        post(receiver.url, json.dumps(PAYLOAD).encode())
        assert receiver.wait_for(lambda n: n.status == "firing", 5).receiver == "page"
        started = time.monotonic()
        assert receiver.wait_for(lambda n: n.status == "firing", 0.3, since=1) is None
        assert time.monotonic() - started >= 0.3


@pytest.mark.e2e
def test_runs_standalone_as_the_compose_bundle_runs_it_and_prints_each_notification(tmp_path):
    # the alert-receiver service mounts this one file into a plain Python image: no package next to it
    script = tmp_path / "alert_receiver.py"
    shutil.copy(alert_receiver.__file__, script)
    port = free_port()
    proc = ManagedProcess(
        [sys.executable, "-I", str(script), "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        log=tmp_path / "log",
    )
    try:
        wait_for_port(port, 30, proc.proc)
        assert post(f"http://127.0.0.1:{port}/alerts", json.dumps(PAYLOAD).encode()) == (200, "ok")
        deadline = time.monotonic() + 10
        while "firing to page" not in proc.output() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.stop()
    line = next(ln for ln in proc.output().splitlines() if "firing to page" in ln)
    assert "HTTPErrorBudgetFastBurn" in line and "service=shop" in line


def test_parse_notification_keeps_alerts_without_labels_usable():
    notification = parse_notification(b'{"receiver": "r", "status": "firing", "alerts": [{}]}')
    assert notification.alerts == [{"labels": {}}] and notification.line().startswith("firing to r")
