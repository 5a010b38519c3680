"""The shipped Alertmanager config routes, groups and inhibits as docs/alerts.md says, holds no secret, and
the compose bundle, prometheus.yml and the native stack (statsd_instrument/stack/alertmanager.py) use it.

amtool (Debian's prometheus-alertmanager) validates the config and resolves routes; the live behaviour
(delivery, inhibition, resolution) is proven in tests/test_stack_e2e.py.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from statsd_instrument.stack import alert_receiver
from statsd_instrument.stack import alertmanager as am
from tests import stack_files as sf
from tests.helpers import REPO

AM_YML = REPO / "alertmanager" / "alertmanager.yml"
SECRETS_DIR = "/etc/alertmanager/secrets"
ALERTS_DOC = REPO / "docs" / "alerts.md"
#: config fields that hold a secret inline; each has a ``*_file`` twin the config must use instead
INLINE_SECRETS = {
    "api_url",
    "slack_api_url",
    "auth_password",
    "smtp_auth_password",
    "auth_secret",
    "smtp_auth_secret",
    "routing_key",
    "service_key",
    "api_key",
    "credentials",
    "password",
    "bot_token",
}


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)


def config() -> dict:
    return sf.load_yaml(AM_YML)


def routes_test(config_file: Path, labels: dict[str, str]) -> str:
    """The receiver(s) amtool resolves ``labels`` to with ``config_file``."""
    result = run(
        [
            "amtool",
            "config",
            "routes",
            "test",
            f"--config.file={config_file}",
            *(f"{k}={v}" for k, v in labels.items()),
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def alert_rules() -> dict[str, dict]:
    return {rule["alert"]: rule for rule in sf.rules() if "alert" in rule}


def alert_labels(name: str, service: str = "shop") -> dict[str, str]:
    """The labels an alert of the shipped rules carries when it fires for ``service``."""
    return {"alertname": name, "service": service, **alert_rules()[name]["labels"]}


def matches(matcher: str, labels: dict[str, str]) -> bool:
    """Whether Alertmanager's ``name<op>"value"`` matcher selects ``labels`` (regexes are anchored)."""
    found = re.fullmatch(r'(\w+)\s*(=~|!~|!=|=)\s*"(.*)"', matcher)
    assert found, f"unsupported matcher {matcher!r}"
    name, op, value = found.groups()
    actual = labels.get(name, "")
    return {
        "=": actual == value,
        "!=": actual != value,
        "=~": re.fullmatch(value, actual) is not None,
        "!~": re.fullmatch(value, actual) is None,
    }[op]


@pytest.mark.e2e
def test_amtool_accepts_the_shipped_config():
    result = run(["amtool", "check-config", str(AM_YML)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "1 inhibit rules" in result.stdout


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("alertname", "receiver"),
    [
        ("HTTPErrorBudgetFastBurn", "page"),
        ("HTTPErrorBudgetSlowBurn", "ticket"),
        ("HTTPLatencyP99High", "ticket"),
    ],
)
def test_amtool_routes_each_alert_by_its_severity(alertname, receiver):
    labels = alert_labels(alertname)
    assert labels["severity"] == receiver
    assert routes_test(AM_YML, labels) == receiver


@pytest.mark.e2e
def test_every_shipped_alert_reaches_a_receiver_named_for_its_severity():
    # alerts other helpers add (client drops, exporter drops) must be routed too, by the same rule
    for name in alert_rules():
        labels = alert_labels(name)
        assert routes_test(AM_YML, labels) == labels["severity"], name


@pytest.mark.e2e
def test_an_alert_without_severity_is_not_dropped_but_ticketed():
    assert routes_test(AM_YML, {"alertname": "SomethingNew", "service": "shop"}) == "ticket"
    assert routes_test(AM_YML, {"alertname": "SomethingNew", "severity": "critical"}) == "ticket"


def test_notifications_are_grouped_by_alertname_service_and_severity():
    route = config()["route"]
    assert route["group_by"] == ["alertname", "service", "severity"]
    assert all("group_by" not in child for child in route["routes"])  # inherited unchanged


def test_fast_burn_inhibits_the_same_services_slow_burn_and_latency_alerts():
    [rule] = config()["inhibit_rules"]
    assert rule["equal"] == ["service"]
    names = set(alert_rules())

    def sources(labels):
        return all(matches(m, labels) for m in rule["source_matchers"])

    def targets(labels):
        return all(matches(m, labels) for m in rule["target_matchers"])

    assert {n for n in names if sources(alert_labels(n))} == {"HTTPErrorBudgetFastBurn"}
    assert {n for n in names if targets(alert_labels(n))} == {"HTTPErrorBudgetSlowBurn", "HTTPLatencyP99High"}


def walk(node, path=()):
    """(key path, value) of every scalar in a YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, (*path, i))
    else:
        yield path, node


def test_no_secret_is_in_the_config_only_files_under_the_mounted_secrets_directory():
    fields = list(walk(config()))
    inline = [path for path, _ in fields if path[-1] in INLINE_SECRETS]
    assert inline == []
    files = {path[-1]: value for path, value in fields if str(path[-1]).endswith("_file")}
    assert set(files) == {"smtp_auth_password_file", "api_url_file"}
    assert all(str(value).startswith(SECRETS_DIR + "/") for value in files.values()), files


@pytest.mark.e2e
def test_secrets_directory_is_git_ignored_and_mounted_read_only():
    for name in ("slack_api_url", "smtp_password"):
        result = run(["git", "check-ignore", "-q", f"alertmanager/secrets/{name}"])
        assert result.returncode == 0, f"alertmanager/secrets/{name} is not git-ignored"
    source, mode = sf.volume_mounts(sf.compose_services()["alertmanager"])[SECRETS_DIR]
    assert (REPO / source).resolve() == REPO / "alertmanager" / "secrets" and mode == "ro"


def test_compose_runs_alertmanager_on_the_shipped_config_with_a_volume_and_a_local_port():
    service = sf.compose_services()["alertmanager"]
    assert service["image"].startswith("prom/alertmanager:v")
    flags = sf.command_flags(service)
    mounts = sf.volume_mounts(service)
    source, mode = mounts[flags["--config.file"]]
    assert (REPO / source).resolve() == AM_YML and mode == "ro"
    volume, _ = mounts[flags["--storage.path"]]
    assert volume in sf.load_yaml(sf.COMPOSE_INFRA)["volumes"]
    assert flags["--cluster.listen-address"] == ""  # a single instance opens no gossip port
    # the UI is published on this machine's loopback only; Prometheus reaches it over the compose network
    assert service["ports"] == [f"127.0.0.1:{flags['--web.listen-address'].rsplit(':', 1)[1]}:9093"]
    assert "9093/-/ready" in " ".join(service["healthcheck"]["test"])


def test_prometheus_sends_alerts_to_the_alertmanager_service():
    service = sf.compose_services()["alertmanager"]
    port = sf.command_flags(service)["--web.listen-address"].rsplit(":", 1)[1]
    [manager] = sf.load_yaml(sf.PROMETHEUS_YML)["alerting"]["alertmanagers"]
    assert manager["static_configs"] == [{"targets": [f"alertmanager:{port}"]}]


def test_every_webhook_reaches_the_alert_receiver_service_running_our_receiver():
    receiver = sf.compose_services()["alert-receiver"]
    listen = receiver["command"][receiver["command"].index("--listen") + 1]
    script = receiver["command"][1]
    source, mode = sf.volume_mounts(receiver)[script]
    assert (REPO / source).resolve() == Path(alert_receiver.__file__).resolve() and mode == "ro"
    assert "ports" not in receiver  # only Alertmanager talks to it
    urls = [w["url"] for r in config()["receivers"] for w in r.get("webhook_configs", [])]
    assert len(urls) == len(config()["receivers"]) == 2  # every receiver delivers to the webhook too
    for url in urls:
        parts = urlsplit(url)
        assert (parts.hostname, parts.port, parts.path) == (
            "alert-receiver",
            int(listen[1:]),
            alert_receiver.PATH,
        )


def test_page_and_ticket_receivers_use_webhook_slack_and_email():
    receivers = {r["name"]: r for r in config()["receivers"]}
    assert set(receivers) == {"page", "ticket"}
    kinds = {name: {k for k in r if k.endswith("_configs")} for name, r in receivers.items()}
    assert kinds["page"] == {"webhook_configs", "slack_configs", "email_configs"}
    assert kinds["ticket"] == {"webhook_configs", "email_configs"}
    assert receivers["page"]["slack_configs"][0]["send_resolved"] is True


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_sections() -> dict[str, str]:
    """{anchor: text} of the ``###`` sections of docs/alerts.md."""
    text = ALERTS_DOC.read_text()
    parts = re.split(r"^### (.+)$", text, flags=re.M)
    return {github_anchor(title): body.split("\n## ")[0] for title, body in zip(parts[1::2], parts[2::2])}


def test_every_alert_has_severity_summary_description_and_a_runbook_section():
    sections = runbook_sections()
    assert len(alert_rules()) >= 3
    for name, rule in alert_rules().items():
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        path, _, anchor = annotations["runbook_url"].partition("#")
        assert (REPO / path).resolve() == ALERTS_DOC, name
        assert anchor in sections, f"{name}: no section #{anchor} in docs/alerts.md"
        assert "What it means" in sections[anchor] and "What to do first" in sections[anchor], name


@pytest.mark.e2e
def test_derived_config_keeps_routing_and_inhibition_and_delivers_only_to_the_local_webhook(tmp_path):
    timers = {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h", "resolve_timeout": "5s"}
    path = am.derive_config(AM_YML, tmp_path, "http://127.0.0.1:9/alerts", timers=timers)
    result = run(["amtool", "check-config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    derived, shipped = yaml.safe_load(path.read_text()), config()
    assert derived["inhibit_rules"] == shipped["inhibit_rules"]
    assert derived["global"] == {"resolve_timeout": "5s"}
    assert derived["receivers"] == [
        {"name": r["name"], "webhook_configs": [{"url": "http://127.0.0.1:9/alerts", "send_resolved": True}]}
        for r in shipped["receivers"]
    ]
    # the same tree, only its timers changed
    assert {k: v for k, v in derived["route"].items() if k not in am.ROUTE_TIMERS and k != "routes"} == {
        k: v for k, v in shipped["route"].items() if k not in am.ROUTE_TIMERS and k != "routes"
    }
    assert [r["matchers"] for r in derived["route"]["routes"]] == [
        r["matchers"] for r in shipped["route"]["routes"]
    ]
    assert {derived["route"][t] for t in am.ROUTE_TIMERS} == {"1s", "2s", "1h"}
    assert derived["route"]["routes"][0]["group_wait"] == "1s"  # a child's own timer is overridden too
    for name in ("HTTPErrorBudgetFastBurn", "HTTPLatencyP99High"):
        assert routes_test(path, alert_labels(name)) == routes_test(AM_YML, alert_labels(name))


def test_derived_config_rejects_an_unknown_timer_naming_it(tmp_path):
    with pytest.raises(ValueError, match="group_waiting"):
        am.derive_config(AM_YML, tmp_path, "http://127.0.0.1:9/alerts", timers={"group_waiting": "1s"})
