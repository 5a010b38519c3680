"""The shipped stack files hang together: compose spec, pinned images, wiring, Prometheus config and rules.

No Docker here: the compose files are validated against the compose specification (check-jsonschema's
vendored schema, offline) and their wiring is read from the YAML; Prometheus files go through promtool.
"""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import PurePosixPath

import pytest
import yaml

from tests import stack_files as sf
from tests.helpers import REPO, python_bin

DOCKERFILE = REPO / "examples" / "flask_app" / "Dockerfile"


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)


def exporter_service() -> tuple[str, dict]:
    found = [
        (name, svc)
        for name, svc in sf.compose_services().items()
        if svc.get("image", "").split(":")[0] == sf.EXPORTER_IMAGE
    ]
    assert len(found) == 1, f"expected one {sf.EXPORTER_IMAGE} service, found {found}"
    return found[0]


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@pytest.mark.e2e
@pytest.mark.parametrize("path", [sf.COMPOSE_APP, sf.COMPOSE_INFRA], ids=lambda p: p.name)
def test_compose_file_validates_against_compose_spec(path):
    result = run([python_bin("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_image_is_pinned_to_a_version():
    images = [svc["image"] for svc in sf.compose_services().values() if "image" in svc]
    images += re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert len(images) >= 5
    for image in images:
        _, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d", tag), f"image {image!r} is not pinned"


def test_every_service_has_a_healthcheck_and_a_restart_policy():
    for name, svc in sf.compose_services().items():
        assert svc.get("healthcheck", {}).get("test"), f"service {name}: no healthcheck"
        assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), f"service {name}: restart"


def test_app_is_built_from_its_dockerfile_and_runs_uwsgi_with_five_workers():
    app = sf.load_yaml(sf.COMPOSE_APP)["services"]["app"]
    assert (REPO / app["build"]["context"] / app["build"]["dockerfile"]).resolve() == DOCKERFILE
    cmd = re.findall(r"^CMD\s+(\[.*\])$", DOCKERFILE.read_text(), flags=re.MULTILINE)[-1]
    argv = yaml.safe_load(cmd)
    assert argv[:3] == ["uwsgi", "--ini", "/app/uwsgi.ini"]
    assert argv[argv.index("--http-socket") + 1] == ":8000"
    assert "COPY examples/flask_app /app" in DOCKERFILE.read_text()
    ini = configparser.ConfigParser(strict=False, interpolation=None)
    ini.read(REPO / "examples" / "flask_app" / "uwsgi.ini")
    assert ini["uwsgi"]["processes"].strip() == "5"
    assert any(p.split(":")[-1] == "8000" for p in app["ports"])


def test_app_scales_to_three_replicas_with_the_files_as_shipped():
    # `docker compose ... up --scale app=3`: no fixed container name, no single fixed host port on the app
    app = sf.load_yaml(sf.COMPOSE_APP)["services"]["app"]
    assert "container_name" not in app
    for spec in app.get("ports", []):
        published = spec.split(":")[-2] if spec.count(":") >= 1 else ""
        if published:
            first, _, last = published.partition("-")
            assert last and int(last) - int(first) + 1 >= 3, f"app port {spec!r} allows one replica"
    assert "deploy" not in app or "replicas" not in app["deploy"]  # --scale decides
    # every replica finds the exporter by service name (compose DNS), not by a container name
    name, _ = exporter_service()
    assert app["environment"]["STATSD_HOST"] == name


def test_app_pushes_to_the_exporter_service_on_its_udp_port():
    name, exporter = exporter_service()
    app = sf.load_yaml(sf.COMPOSE_APP)["services"]["app"]
    assert app["environment"]["STATSD_HOST"] == name
    udp_port = port_of(sf.command_flags(exporter)["--statsd.listen-udp"])
    assert int(app["environment"]["STATSD_PORT"]) == udp_port == 9125


def test_exporter_loads_the_shipped_mapping_mounted_read_only():
    _, exporter = exporter_service()
    mapping_path = sf.command_flags(exporter)["--statsd.mapping-config"]
    source, mode = sf.volume_mounts(exporter)[mapping_path]
    assert (REPO / source).resolve() == REPO / "exporter-mapping.yml"
    assert mode == "ro"


def test_prometheus_scrapes_the_exporter_service_on_9102():
    name, exporter = exporter_service()
    assert port_of(sf.command_flags(exporter)["--web.listen-address"]) == 9102
    config = sf.load_yaml(sf.PROMETHEUS_YML)
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert f"{name}:9102" in targets
    job = next(j for j in config["scrape_configs"] if f"{name}:9102" in j["static_configs"][0]["targets"])
    assert job.get("scrape_interval", config["global"]["scrape_interval"]) == "5s"


def test_prometheus_container_sees_the_same_config_and_rule_files():
    prometheus = sf.compose_services()["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:")
    mounts = sf.volume_mounts(prometheus)
    config_path = PurePosixPath(sf.command_flags(prometheus)["--config.file"])
    assert (REPO / mounts[str(config_path)][0]).resolve() == sf.PROMETHEUS_YML
    # each rule_files glob, resolved next to the config inside the container, lands in a mounted directory
    # holding exactly the files the same glob finds next to prometheus.yml here
    for pattern in sf.load_yaml(sf.PROMETHEUS_YML)["rule_files"]:
        in_container = config_path.parent / pattern
        mount = next(t for t in mounts if in_container.parent == PurePosixPath(t))
        host_dir = (REPO / mounts[mount][0]).resolve()
        assert sorted(host_dir.glob(in_container.name)) == sorted(sf.PROMETHEUS_YML.parent.glob(pattern))


@pytest.mark.e2e
def test_promtool_accepts_the_config_and_its_rule_files():
    files = sf.rule_files()
    assert {f.name for f in files} == {
        "http-red.rules.yml",
        "http-slo.rules.yml",
        "statsd-pipeline.rules.yml",
    }
    result = run(["promtool", "check", "config", str(sf.PROMETHEUS_YML)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(files)} rule files found" in result.stdout
    result = run(["promtool", "check", "rules", *map(str, files)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_have_the_red_and_slo_series_the_dashboard_uses():
    recorded = {r["record"] for r in sf.rules() if "record" in r}
    alerts = {r["alert"]: r for r in sf.rules() if "alert" in r}
    for q in ("p50", "p90", "p99"):
        assert f"service_endpoint:http_request_duration_seconds:{q}_rate1m" in recorded
    assert "service_endpoint:http_request_error_ratio:rate1m" in recorded
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
        assert f"service:http_request_error_ratio:rate{window}" in recorded
    assert alerts["HTTPLatencyP99High"]["for"] == "1m"
    assert "> 0.25" in alerts["HTTPLatencyP99High"]["expr"]
    used = {name for _, q in sf.dashboard_panel_queries() for name in re.findall(r"[\w]+:[\w]+:[\w]+", q)}
    assert used and used <= recorded, used - recorded


@pytest.mark.e2e
def test_promtool_rule_unit_tests_pass():
    tests = sorted(sf.RULE_TESTS_DIR.glob("*.test.yml"))
    assert len(tests) == 3
    result = run(["promtool", "test", "rules", *map(str, tests)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests)


def test_pipeline_alerts_watch_client_drops_and_the_exporters_own_losses():
    alerts = {r["alert"]: r for r in sf.rules() if "alert" in r}
    watched = {
        "StatsdClientDroppedMetrics": "statsd_instrument_client_dropped_total",
        "StatsdExporterUDPPacketDrops": "statsd_exporter_udp_packet_drops_total",
        "StatsdExporterLineErrors": "statsd_exporter_sample_errors_total",
        "StatsdExporterTagErrors": "statsd_exporter_tag_errors_total",
        "StatsdExporterEventConflicts": "statsd_exporter_events_conflict_total",
    }
    for name, metric in watched.items():
        alert = alerts[name]
        assert metric in alert["expr"], name
        assert alert["labels"]["severity"] == "ticket", name
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], name
    # the client's counter is the name the shipped mapping gives the line the client pushes
    from statsd_instrument.guard import prometheus_name
    from statsd_instrument.transport import TELEMETRY_METRIC

    assert prometheus_name(TELEMETRY_METRIC, "c") == "statsd_instrument_client_dropped_total"


@pytest.mark.e2e
def test_every_dashboard_query_is_valid_promql(tmp_path):
    # promtool parses rule expressions: wrap each dashboard query (variables substituted) in a rule
    queries = sf.dashboard_panel_queries() + [(v, sel) for v, sel, _ in sf.dashboard_variable_selectors()]
    assert len(queries) >= 10
    rules = [{"record": f"dashboard:query:{i}", "expr": q} for i, (_, q) in enumerate(queries)]
    path = tmp_path / "dashboard-queries.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run(["promtool", "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_has_red_panels_a_heatmap_and_slo_burn():
    dash = sf.dashboard()
    kinds = [p["type"] for p in dash["panels"]]
    assert "heatmap" in kinds
    text = " ".join(q for _, q in sf.dashboard_panel_queries())
    for needle in ("rate(http_requests_total", "error_ratio", "duration_seconds", "/ 0.02"):
        assert needle in text
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard():
    grafana = sf.compose_services()["grafana"]
    mounts = sf.volume_mounts(grafana)
    provisioning = next(t for t, (src, _) in mounts.items() if src.endswith("grafana/provisioning"))
    assert provisioning == "/etc/grafana/provisioning"
    datasource = sf.load_yaml(sf.GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090" and datasource["type"] == "prometheus"
    provider = sf.load_yaml(sf.GRAFANA_PROVISIONING / "dashboards" / "statsd-instrument.yml")["providers"][0]
    source, mode = mounts[provider["options"]["path"]]
    assert (REPO / source).resolve() == sf.DASHBOARD.parent and mode == "ro"
    assert sf.DASHBOARD.exists()


#: what each image must write, and so gets a volume or a tmpfs under a read-only root (the exporter: nothing)
WRITABLE_PATHS = {
    "statsd-instrument-example": {"/tmp"},
    "prom/statsd-exporter": set(),
    "prom/prometheus": {"/prometheus"},
    "grafana/grafana": {"/var/lib/grafana", "/tmp"},
    "prom/alertmanager": {"/alertmanager"},
    "python": set(),  # the alert receiver
}


def test_published_ports_bind_to_loopback_and_never_the_statsd_port():
    _, exporter = exporter_service()
    flags = sf.command_flags(exporter)
    statsd_ports = {port_of(flags[f]) for f in ("--statsd.listen-udp", "--statsd.listen-tcp") if flags.get(f)}
    assert statsd_ports == {9125}
    published = [(name, p) for name, svc in sf.compose_services().items() for p in sf.published_ports(svc)]
    assert {name for name, _ in published} >= {"statsd-exporter", "prometheus", "grafana"}
    for name, (host_ip, _, container_port, _) in published:
        where = host_ip or "every address"
        assert host_ip == "127.0.0.1", f"service {name} publishes {container_port} on {where}"
        assert name != "statsd-exporter" or container_port not in statsd_ports, f"publishes {container_port}"
    assert ("127.0.0.1", 9102, 9102, "tcp") in sf.published_ports(exporter)


def test_grafana_admin_password_has_no_default_and_comes_from_the_environment():
    env = sf.compose_services()["grafana"]["environment"]
    # ${VAR:?message}: compose refuses to start while VAR is unset or empty
    assert re.fullmatch(r"\$\{GF_ADMIN_PASSWORD:\?[^}]+\}", env["GF_SECURITY_ADMIN_PASSWORD"])
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE" not in env
    assert "admin" not in {str(v) for v in env.values()}


@pytest.mark.parametrize("name", sorted(sf.compose_services()))
def test_every_container_is_non_root_on_a_read_only_root_with_a_place_to_write(name):
    svc = sf.compose_services()[name]
    uid = str(svc.get("user", "")).split(":")[0]
    assert uid and uid not in ("0", "root"), f"service {name}: user {svc.get('user')!r}"
    assert svc.get("read_only") is True, f"service {name}: root filesystem not read-only"
    assert svc.get("cap_drop") == ["ALL"], f"service {name}: capabilities kept"
    assert "no-new-privileges:true" in svc.get("security_opt", []), f"service {name}"
    writable = set(sf.volume_mounts(svc)) | set(svc.get("tmpfs", []))
    needs = WRITABLE_PATHS[svc["image"].split(":")[0]]
    assert needs <= writable, f"service {name}: {needs - writable} must be a volume or a tmpfs"
    for target, (_, mode) in sf.volume_mounts(svc).items():
        assert mode == "ro" or target in needs, f"service {name}: {target} mounted writable"


def test_app_image_runs_as_the_same_unprivileged_user_as_its_service():
    users = re.findall(r"^USER\s+(\S+)$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert users[-1] == "nobody"  # uid 65534 in python:*-slim-bookworm, as the app service says
    assert sf.load_yaml(sf.COMPOSE_APP)["services"]["app"]["user"].split(":")[0] == "65534"


def test_native_demo_binds_every_listener_to_loopback():
    from statsd_instrument.stack.commands import app_argv, exporter_argv
    from statsd_instrument.stack.prometheus import prometheus_argv

    argvs = [
        exporter_argv(PurePosixPath("m.yml"), 9125, 9102),
        app_argv("uwsgi", PurePosixPath("uwsgi.ini"), 8000),
        prometheus_argv("prometheus", PurePosixPath("p.yml"), PurePosixPath("data"), 9090),
    ]
    addresses = []
    for argv in argvs:
        for i, arg in enumerate(argv):
            flag, _, value = arg.partition("=")
            if flag in ("--http-socket", "--socket"):
                value = argv[i + 1]
            if flag.startswith("--") and ("listen" in flag or "socket" in flag) and value:
                addresses.append(value)
    assert len(addresses) == 4, addresses  # exporter UDP + HTTP, uwsgi HTTP, Prometheus HTTP
    assert all(a.startswith("127.0.0.1:") for a in addresses), addresses
