"""``statsd-instrument demo --pods N``: many pods, Prometheus agents, remote write, one central store.

What a Kubernetes cluster running ``deploy/kubernetes`` does, natively and in one command (as root):

- each pod is a network namespace with its own address on a bridge (:mod:`~statsd_instrument.stack.netns`),
  running the example app under uwsgi (5 workers) and its exporter sidecar (the embedded exporter), the app
  pushing to the exporter on the pod's own 127.0.0.1, as the Kubernetes sidecar does;
- per node (two here, the pods spread over them) a Prometheus in agent mode runs the very scrape job of
  ``deploy/kubernetes/overlays/annotations/prometheus.yml`` (its relabeling gives every series ``namespace``,
  ``pod`` and ``instance``), with file discovery standing in for the API server: the pods' metadata
  (annotations, container ports) is written in the labels Kubernetes discovery would give;
- the agents remote-write into a central store, VictoriaMetrics, where vmalert evaluates
  ``prometheus/rules`` over all pods (it writes the recording rules back into the store and sends the
  alerts to Alertmanager, which delivers them to the demo's webhook receiver, as in the one-pod demo);
- traffic is spread over the pods; halfway one pod is drained, killed and replaced by a fresh one (a new
  name and address, a new exporter whose counters start at zero), as a Deployment replaces a pod;
- at the end ``final: <A> requests answered, <C> counted by the central store`` with C the central
  ``sum(increase_pure(http_requests_total[...]))`` over every pod that ever ran (docs/scaling.md states
  the bound).

Everything it starts is stopped by pid, and every namespace and link it made is removed.

>>> annotation_label("prometheus.io/scrape")
'__meta_kubernetes_pod_annotation_prometheus_io_scrape'
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from statsd_instrument.stack import summary as live
from statsd_instrument.stack.commands import app_argv, exporter_argv
from statsd_instrument.stack.demo_run import PROG, Demo
from statsd_instrument.stack.files import StackFiles
from statsd_instrument.stack.netns import PodAddress, PodNetwork, free_subnet, why_not_available
from statsd_instrument.stack.ports import Port, PortTakenError, check_ports_free
from statsd_instrument.stack.processes import Child, wait_for_http_ok
from statsd_instrument.stack.prometheus import PrometheusAPI, PromQLError
from statsd_instrument.stack.traffic import Traffic, TrafficStats

NAMESPACE = "demo"
NODES = ("node-a", "node-b")
#: the annotations the Kubernetes annotations overlay puts on the pods (the port is the exporter's)
POD_ANNOTATIONS = {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics"}
TOOLS = {
    "prometheus": "prometheus (Debian package prometheus)",
    "prometheus-alertmanager": "Alertmanager (Debian package prometheus-alertmanager)",
    "victoria-metrics": "victoria-metrics (Debian package victoria-metrics)",
    "vmalert": "vmalert (Debian package victoria-metrics)",
}


def annotation_label(key: str) -> str:
    """The discovery label Prometheus' Kubernetes pod role gives an annotation."""
    return "__meta_kubernetes_pod_annotation_" + "".join(c if c.isalnum() else "_" for c in key)


def counted_query(window_s: float, pod: str | None = None) -> str:
    """MetricsQL: requests counted over the last ``window_s`` seconds, summed over every pod (or one).

    ``increase_pure`` is VictoriaMetrics' ``increase`` without one heuristic: plain ``increase`` drops the
    first sample of a series that starts in the window when that sample is at least ten times the series'
    next increase plus one (a series first scraped at 10 and then idle loses its 10). Every pod's exporter
    starts from zero, which is what ``increase_pure`` assumes.

    >>> counted_query(90, "app-2")
    'sum(increase_pure(http_requests_total{pod="app-2"}[90s]))'
    """
    selector = f'{{pod="{pod}"}}' if pod else ""
    return f"sum(increase_pure({live.REQUESTS}{selector}[{int(window_s)}s]))"


def pod_targets(pod: PodAddress, node: str, app_port: int, exporter_port: int) -> list[dict[str, Any]]:
    """The targets Kubernetes pod discovery gives one pod: one per container port, with the pod's labels."""
    labels = {
        "__meta_kubernetes_namespace": NAMESPACE,
        "__meta_kubernetes_pod_name": pod.name,
        "__meta_kubernetes_pod_ip": pod.ip,
        "__meta_kubernetes_pod_node_name": node,
        "__meta_kubernetes_pod_phase": "Running",
        **{annotation_label(k): v for k, v in POD_ANNOTATIONS.items()},
        annotation_label("prometheus.io/port"): str(exporter_port),
    }
    containers = [("app", "http", app_port, "false"), ("statsd-exporter", "metrics", exporter_port, "true")]
    return [
        {
            "targets": [f"{pod.ip}:{port}"],
            "labels": {
                **labels,
                "__meta_kubernetes_pod_container_name": container,
                "__meta_kubernetes_pod_container_port_name": port_name,
                "__meta_kubernetes_pod_container_port_number": str(port),
                "__meta_kubernetes_pod_container_init": init,  # the native sidecar is an init container
            },
        }
        for container, port_name, port, init in containers
    ]


def agent_config(kubernetes_job: Path, targets_file: Path, remote_write_url: str, interval_s: float) -> dict:
    """A Prometheus agent config: the shipped Kubernetes job, file discovery in place of the API server."""
    (job,) = yaml.safe_load(kubernetes_job.read_text())["scrape_configs"]
    if job.pop("kubernetes_sd_configs", None) != [{"role": "pod"}]:
        raise ValueError(f"{kubernetes_job}: expected one job with kubernetes_sd_configs role pod")
    job["file_sd_configs"] = [{"files": [str(targets_file)]}]
    interval = f"{interval_s:g}s"
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval},
        "scrape_configs": [job],
        "remote_write": [
            {
                "url": remote_write_url,
                "queue_config": {"batch_send_deadline": "1s", "min_backoff": "100ms", "max_backoff": "1s"},
            }
        ],
    }


def free_local_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Pod:
    address: PodAddress
    node: str
    exporter: Child
    app: Child
    traffic: Traffic | None = None


class PodsDemo(Demo):
    """The multi-pod demo: :class:`~statsd_instrument.stack.demo_run.Demo`'s run, signals, clean-up; pods."""

    def __init__(self, args: argparse.Namespace, files: StackFiles, uwsgi: str, tools: dict, ports: list):
        super().__init__(args, files, uwsgi, tools["prometheus"], ports, tools["prometheus-alertmanager"])
        self.tools = tools
        self.prefix = f"si-{os.getpid()}-"
        self.network: PodNetwork | None = None
        self.pods: dict[str, Pod] = {}
        self.answered_by: dict[str, TrafficStats] = {}  # final figures of pods whose traffic stopped
        self.retired: list[Child] = []
        self.targets: dict[str, Path] = {node: self.workdir / f"{node}-pods.json" for node in NODES}
        self.central: PrometheusAPI | None = None
        self.alerts: PrometheusAPI | None = None
        self.started_at = time.monotonic()
        self.replaced = False

    def run(self) -> int:
        code = super().run()
        left = self.network.leftovers() if self.network else []
        if left:
            print(f"{PROG}: left behind after stopping: {', '.join(left)}", file=sys.stderr)
            return 1
        return code

    # --- starting ---------------------------------------------------------------------------------------

    def _start(self) -> None:
        a = self.args
        self.started_at = time.monotonic()
        self.say(
            f"statsd_instrument demo, {a.pods} pods, running from the checkout {self.files.root} "
            f"(work dir {self.workdir}, names {self.prefix}*)"
        )
        central_url = f"http://127.0.0.1:{a.prometheus_port}"
        store = self._spawn(
            "victoria-metrics (central store)",
            [
                self.tools["victoria-metrics"],
                f"-storageDataPath={self.workdir / 'central-data'}",
                f"-httpListenAddr=127.0.0.1:{a.prometheus_port}",
                "-retentionPeriod=1d",
                "-search.latencyOffset=0s",  # answer with the samples just written (the default hides 30 s)
                "-search.disableCache",
                "-loggerLevel=WARN",
            ],
        )
        wait_for_http_ok(store, f"{central_url}/health", timeout_s=60)
        self._start_alertmanager()  # where vmalert sends the alerts (it refuses to start without one)
        rules_port = self._local_port("vmalert")
        rules = self._spawn(
            "vmalert (rules over all pods)",
            [
                self.tools["vmalert"],
                f"-rule={self.files.rules_dir}/*.rules.yml",
                f"-datasource.url={central_url}",
                f"-remoteWrite.url={central_url}",  # recording rules are written back into the store
                f"-notifier.url=http://127.0.0.1:{a.alertmanager_port}",
                f"-evaluationInterval={a.scrape_interval:g}s",
                f"-httpListenAddr=127.0.0.1:{rules_port}",
                "-remoteWrite.flushInterval=1s",
                "-loggerLevel=WARN",
            ],
        )
        wait_for_http_ok(rules, f"http://127.0.0.1:{rules_port}/health", timeout_s=60)
        self.central = PrometheusAPI(central_url)
        self.alerts = PrometheusAPI(f"http://127.0.0.1:{rules_port}")
        self.network = PodNetwork(self.prefix, free_subnet(os.getpid()))
        self.network.create()  # assigned first: a half-made bridge is removed too
        agents = []
        for node in NODES[: min(a.pods, len(NODES))]:
            self._write_targets(node)
            port = self._local_port(f"agent {node}")
            config = self.workdir / f"agent-{node}.yml"
            config.write_text(
                yaml.safe_dump(
                    agent_config(
                        self.files.kubernetes_scrape_config,
                        self.targets[node],
                        f"{central_url}/api/v1/write",
                        a.scrape_interval,
                    ),
                    sort_keys=False,
                )
            )
            agent = self._spawn(
                f"agent-{node} (Prometheus agent mode)",
                [
                    self.tools["prometheus"],
                    "--enable-feature=agent",
                    f"--config.file={config}",
                    f"--storage.agent.path={self.workdir / f'agent-{node}-wal'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
            )
            agents.append((node, agent, port))
        for _, agent, port in agents:
            wait_for_http_ok(agent, f"http://127.0.0.1:{port}/-/ready", timeout_s=60)
        for i in range(a.pods):
            self._start_pod(NODES[i % len(NODES)])
        for pod in self.pods.values():
            self._start_traffic(pod)
        self._where_to_look_pods(central_url, rules_port, agents)

    def _local_port(self, component: str) -> int:
        port = free_local_port()
        self.ports.append(Port(component, port, "tcp", "(chosen by the demo)"))
        return port

    def _start_pod(self, node: str) -> Pod:
        """A new pod on ``node``: namespace, exporter, app under uwsgi; then listed for its node's agent."""
        assert self.network is not None
        a = self.args
        name = f"app-{len(set(self.pods) | set(self.answered_by)) + 1}"
        address = self.network.add_pod(name)
        exporter = self._spawn(
            f"{name}-exporter",
            address.exec_argv(exporter_argv(self.files.mapping, a.statsd_port, a.exporter_port, "0.0.0.0")),
        )
        wait_for_http_ok(exporter, f"http://{address.ip}:{a.exporter_port}/-/ready")
        app = self._spawn(
            f"{name}-uwsgi (5 workers)",
            address.exec_argv(app_argv(self.uwsgi, self.files.uwsgi_ini, a.app_port, "0.0.0.0")),
            env={"STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(a.statsd_port)},  # the pod's own loopback
        )
        wait_for_http_ok(app, f"http://{address.ip}:{a.app_port}/health")
        pod = self.pods[name] = Pod(address, node, exporter, app)
        self._write_targets(node)
        return pod

    def _start_traffic(self, pod: Pod) -> None:
        a = self.args
        pod.traffic = Traffic(
            f"http://{pod.address.ip}:{a.app_port}",
            rate_per_s=a.rate / a.pods,
            threads=2,
            seed=len(set(self.pods) | set(self.answered_by)),
        ).start()

    def _write_targets(self, node: str) -> None:
        a = self.args
        groups = [
            group
            for pod in self.pods.values()
            if pod.node == node
            for group in pod_targets(pod.address, node, a.app_port, a.exporter_port)
        ]
        tmp = self.targets[node].with_suffix(".tmp")
        tmp.write_text(json.dumps(groups, indent=1))
        os.replace(tmp, self.targets[node])  # the agent sees a whole file, never half of one

    def _where_to_look_pods(self, central_url: str, rules_port: int, agents: list) -> None:
        a = self.args
        pods = ", ".join(f"{name} {p.address.ip} ({p.node})" for name, p in self.pods.items())
        lines = [
            f"  pods        {pods}: app on :{a.app_port}, exporter /metrics on :{a.exporter_port} "
            f"({a.rate:g} req/s sent, spread over the pods)",
            *(
                f"  {node:<11} Prometheus agent http://127.0.0.1:{port}/targets -> remote write"
                for node, _, port in agents
            ),
            f"  central     VictoriaMetrics {central_url}/vmui  (Prometheus query API at {central_url})",
            f"  rules       vmalert http://127.0.0.1:{rules_port}/  (prometheus/rules over all pods)"
            f" -> Alertmanager http://127.0.0.1:{a.alertmanager_port}",
            f"    try: sum by (pod, instance) (rate({live.REQUESTS}[1m]))",
        ]
        until = f"for {a.duration:g} s" if a.duration else "until Ctrl-C"
        self.say("running " + until + ":\n" + "\n".join(lines))

    # --- running ----------------------------------------------------------------------------------------

    def _window_s(self) -> float:
        """A window reaching back before the first sample of the run."""
        return time.monotonic() - self.started_at + 60

    def _counted(self, pod: str | None = None) -> float | None:
        assert self.central is not None
        try:
            return self.central.scalar(counted_query(self._window_s(), pod))
        except PromQLError:
            return None

    def _sent(self) -> TrafficStats:
        total = TrafficStats()
        stats = list(self.answered_by.values()) + [p.traffic.stats() for p in self.pods.values() if p.traffic]
        for s in stats:
            total.answered += s.answered
            total.no_answer += s.no_answer
            total.by_status.update(s.by_status)
        return total

    def _loop(self) -> None:
        a = self.args
        replace_at = a.duration / 2 if a.duration else 60.0
        loop_started = time.monotonic()  # the traffic's start: --duration counts from here
        next_line = loop_started + a.interval
        while not a.duration or time.monotonic() - loop_started < a.duration:
            for child in self.children:
                if child not in self.retired and not child.running():
                    raise child.failed(f"exited unexpectedly with code {child.proc.returncode}")
            elapsed = time.monotonic() - loop_started
            if not self.replaced and elapsed >= replace_at:
                self.replaced = True
                self._replace_a_pod(elapsed)
            if time.monotonic() >= next_line:
                self._print_pods_summary(time.monotonic() - loop_started)
                next_line = max(next_line + a.interval, time.monotonic() + a.interval / 2)
            time.sleep(0.2)
        self._final_pods_count()

    def _replace_a_pod(self, elapsed: float) -> None:
        """Drain one pod (no new requests, its last counts scraped), kill it, start a fresh one."""
        assert self.network is not None
        victim = list(self.pods.values())[min(1, len(self.pods) - 1)]
        name = victim.address.name
        assert victim.traffic is not None
        sent = self.answered_by[name] = victim.traffic.stop()
        deadline = time.monotonic() + 4 * self.args.scrape_interval + 30  # a new series shows up late
        counted = self._counted(name)
        while counted != sent.answered and time.monotonic() < deadline:
            time.sleep(0.5)
            counted = self._counted(name)
        shown = "n/a" if counted is None else f"{counted:.0f}"
        for child in (victim.app, victim.exporter):
            child.stop()
            self.retired.append(child)
        del self.pods[name]
        self.network.remove_pod(name)
        self._write_targets(victim.node)
        fresh = self._start_pod(victim.node)
        self._start_traffic(fresh)
        self.say(
            f"{elapsed:6.0f}s replaced pod {name} (drained: {sent.answered} answered, {shown} counted "
            f"centrally; killed) by {fresh.address.name} at {fresh.address.ip} on {fresh.node}: "
            "a fresh exporter, counters from zero"
        )

    def _print_pods_summary(self, elapsed_s: float) -> None:
        assert self.central is not None
        reading = live.from_prometheus(
            self.central,
            source="central store",
            requests_query=counted_query(self._window_s()),
            alerts_api=self.alerts,
        )
        sent = self._sent()
        self.say(
            f"{elapsed_s:6.0f}s {reading.line()} | {len(self.pods)} pods | sent {sent.answered} "
            f"({sent.server_errors} x 5xx, {sent.no_answer} unanswered)"
        )

    def _final_pods_count(self, timeout_s: float = 30.0) -> None:
        """Stop the traffic, wait for the last scrapes and remote writes, compare with the central count."""
        for name, pod in self.pods.items():
            if pod.traffic is not None:
                self.answered_by[name] = pod.traffic.stop()
                pod.traffic = None
        answered = self._sent().answered
        deadline = time.monotonic() + timeout_s + 4 * self.args.scrape_interval
        counted = self._counted()
        while counted != answered and time.monotonic() < deadline:
            time.sleep(0.5)
            counted = self._counted()
        shown = "n/a" if counted is None else f"{counted:.0f}"
        ending = ": every one" if counted == answered else f" after {timeout_s:g} s"
        self.say(f"final: {answered} requests answered, {shown} counted by the central store{ending}")
        if counted != answered:  # which pod differs
            for name, sent in sorted(self.answered_by.items()):
                self.say(f"  {name}: {sent.answered} answered, {self._counted(name)} counted")

    # --- stopping ---------------------------------------------------------------------------------------

    def _stop_all(self) -> None:
        for pod in self.pods.values():
            if pod.traffic is not None:
                pod.traffic.stop()
        super()._stop_all()  # every process, last started first, by pid
        if self.network is not None:
            left = self.network.remove()
            if not left:
                self.say(f"removed the pods' network namespaces and links ({self.prefix}*)")


def run_pods(args: argparse.Namespace, files: StackFiles, uwsgi: str) -> int:
    """Check what ``--pods`` needs (root, ip, the tools, a free port), then run :class:`PodsDemo`."""
    reason = why_not_available()
    if reason:
        print(f"{PROG}: {reason}", file=sys.stderr)
        return 2
    tools = {}
    for tool, package in TOOLS.items():
        path = shutil.which(tool)
        if path is None:
            print(f"{PROG}: --pods needs {package}; `make demo` as root installs it", file=sys.stderr)
            return 2
        tools[tool] = path
    if not files.kubernetes_scrape_config.is_file():
        print(f"{PROG}: {files.kubernetes_scrape_config} is missing (the pods' scrape job)", file=sys.stderr)
        return 2
    ports = [
        Port("central store", args.prometheus_port, "tcp", "--prometheus-port"),
        Port("Alertmanager", args.alertmanager_port, "tcp", "--alertmanager-port"),
    ]
    try:
        check_ports_free(ports)
    except (PortTakenError, ValueError) as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    return PodsDemo(args, files, uwsgi, tools, ports).run()
