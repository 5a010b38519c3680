"""Reading the shipped stack files (compose, prometheus.yml, rules, dashboard) for the stack tests.

Shared by tests/test_stack_static.py and tests/test_stack_e2e.py so both check the same queries.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import REPO

COMPOSE_APP = REPO / "docker-compose.yml"
COMPOSE_INFRA = REPO / "docker-compose-infra.yml"
PROMETHEUS_YML = REPO / "prometheus.yml"
RULES_DIR = REPO / "prometheus" / "rules"
RULE_TESTS_DIR = REPO / "prometheus" / "tests"
DASHBOARD = REPO / "grafana" / "dashboards" / "statsd-instrument-red.json"
GRAFANA_PROVISIONING = REPO / "grafana" / "provisioning"
EXPORTER_IMAGE = "prom/statsd-exporter"

#: what the dashboard's template variables stand for when a test evaluates its queries: every service and
#: endpoint (the variables' "All" value is ".+"), and a rate window that spans several 1 s scrapes
DASHBOARD_VARIABLES = {"$__rate_interval": "30s", "$service": ".+", "$endpoint": ".+"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose_services() -> dict[str, dict]:
    """Services of both compose files merged (as ``docker compose -f a -f b`` does for distinct names)."""
    services: dict[str, dict] = {}
    for path in (COMPOSE_APP, COMPOSE_INFRA):
        services.update(load_yaml(path)["services"])
    return services


def command_flags(service: dict) -> dict[str, str]:
    """``--flag=value`` items of a compose service's command list, as {flag: value}."""
    flags = {}
    for item in service.get("command", []):
        name, _, value = item.partition("=")
        flags[name] = value
    return flags


def volume_mounts(service: dict) -> dict[str, tuple[str, str]]:
    """Short-syntax volumes as {container path: (host path or volume name, mode)}."""
    mounts = {}
    for item in service.get("volumes", []):
        source, target, *mode = item.split(":")
        mounts[target] = (source, mode[0] if mode else "rw")
    return mounts


def published_ports(service: dict) -> list[tuple[str, int, int, str]]:
    """A service's published ports: (host ip, first host port, container port, protocol); "" = every address.

    >>> published_ports({"ports": ["127.0.0.1:80-89:8080", "9125:9125/udp", {"target": 1, "published": "2"}]})
    [('127.0.0.1', 80, 8080, 'tcp'), ('', 9125, 9125, 'udp'), ('', 2, 1, 'tcp')]
    """
    out = []
    for item in service.get("ports", []):
        if isinstance(item, dict):
            host_ip, protocol = item.get("host_ip", ""), item.get("protocol", "tcp")
            out.append((host_ip, int(item["published"]), int(item["target"]), protocol))
            continue
        spec, _, protocol = str(item).partition("/")
        *host, container = spec.split(":")
        host_ip, host_port = (host[0], host[1]) if len(host) == 2 else ("", host[0] if host else container)
        out.append((host_ip, int(host_port.split("-")[0]), int(container), protocol or "tcp"))
    return out


def rule_files() -> list[Path]:
    """The rule files prometheus.yml loads (its globs resolved relative to it, as Prometheus does)."""
    found: list[Path] = []
    for pattern in load_yaml(PROMETHEUS_YML)["rule_files"]:
        found += sorted(PROMETHEUS_YML.parent.glob(pattern))
    return found


def rules() -> list[dict]:
    """Every recording and alerting rule of the shipped rule files."""
    return [rule for path in rule_files() for group in load_yaml(path)["groups"] for rule in group["rules"]]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every dashboard target, template variables substituted."""
    out = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], substitute_variables(target["expr"])))
    return out


def dashboard_variable_selectors() -> list[tuple[str, str, str]]:
    """(variable, series selector, label) of every ``label_values(selector, label)`` template variable."""
    out = []
    for var in dashboard()["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        assert match, f"variable {var['name']}: unsupported query {query!r}"
        out.append((var["name"], substitute_variables(match.group(1)), match.group(2)))
    return out


def substitute_variables(expr: str) -> str:
    for name, value in DASHBOARD_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unsubstituted Grafana variable in {expr!r}"
    return expr


def with_bool_comparisons(expr: str) -> str:
    """An alert expression with its comparisons made ``bool``: it then answers for every series it reads.

    >>> with_bool_comparisons("a > 0.25 and b < (1 * 2)")
    'a > bool 0.25 and b < bool (1 * 2)'
    """
    return re.sub(r"(?<![=!<>])([<>]=?|==|!=)(?!~)\s+(?!bool\b)", r"\1 bool ", expr)


#: shipped window -> window of the derived rule set the live alert test uses (1 s scrapes and evaluations)
SHORT_WINDOWS = {
    "1m": "4s",
    "5m": "4s",
    "10m": "5s",
    "30m": "6s",
    "1h": "8s",
    "2h": "10s",
    "6h": "12s",
    "1d": "14s",
    "3d": "16s",
}


def derive_short_window_rules(out_dir: Path) -> list[Path]:
    """Copies of the shipped rule files with every range window shortened (SHORT_WINDOWS) and ``for`` 2 s.

    Names, labels, thresholds and the structure of every expression stay as shipped, so the live test
    exercises the same alerts in seconds instead of hours. ``promtool test rules`` covers the real windows.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in rule_files():
        doc = load_yaml(path)
        for group in doc["groups"]:
            for rule in group["rules"]:
                rule["expr"] = re.sub(r"\[(\w+)\]", lambda m: f"[{SHORT_WINDOWS[m.group(1)]}]", rule["expr"])
                if "for" in rule:
                    rule["for"] = "2s"
        target = out_dir / path.name
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
        written.append(target)
    return written
