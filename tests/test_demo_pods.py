"""``statsd-instrument demo --pods 3``: pods in network namespaces, Prometheus agents, a central store.

The one end-to-end run (about a minute) proves, on real processes (uwsgi with 5 workers per pod, the embedded
exporter as each pod's sidecar, Prometheus in agent mode running the Kubernetes overlay's scrape job,
VictoriaMetrics + vmalert centrally): every request answered is counted once by the central store across a
pod replacement, per-pod series are told apart by ``pod`` / ``instance``, the shipped rules are evaluated
centrally over all pods, and nothing is left behind (namespaces, links, processes).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from statsd_instrument import demo
from statsd_instrument.stack import netns
from statsd_instrument.stack.prometheus import PrometheusAPI, PromQLError
from tests.helpers import ManagedProcess, free_port, python_bin

SERVICE = "flask_app"


def pids_in(namespace: str) -> set[int]:
    result = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, timeout=10)
    return {int(p) for p in result.stdout.split()}


def pids_mentioning(text: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.e2e
def test_many_pods_are_counted_exactly_once_centrally_across_a_pod_replacement(tmp_path):
    assert netns.why_not_available() is None, "this test runs as root with iproute2, as CI does"
    central = free_port()
    proc = ManagedProcess(
        [python_bin("statsd-instrument"), "demo", "--pods", "3", "--duration", "30", "--scrape-interval", "1",
         "--interval", "5", "--rate", "30", "--prometheus-port", str(central),
         "--alertmanager-port", str(free_port())],
        log=tmp_path / "demo.log",
    )  # fmt: skip
    prefix = f"si-{proc.pid}-"
    api = PrometheusAPI(f"http://127.0.0.1:{central}", timeout_s=3)
    seen: set[int] = set()
    per_pod: list = []
    recorded: list = []
    try:
        deadline = time.monotonic() + 150
        while proc.proc.poll() is None and time.monotonic() < deadline:
            for namespace in netns.names_with_prefix(netns.namespaces(), prefix):
                seen |= pids_in(namespace)
            workdir = re.search(r"\(work dir (\S+),", proc.output())
            if workdir:
                seen |= pids_mentioning(workdir.group(1))
            if "replaced pod" in proc.output():
                try:  # what the central store holds while it runs (it stops with the demo)
                    series = api.query("count by (namespace, pod, instance) (http_requests_total)")
                    per_pod = series if len(series) >= len(per_pod) else per_pod
                    recorded = api.query("service_endpoint:http_requests:rate1m") or recorded
                except PromQLError:
                    pass
            time.sleep(1)
        assert proc.proc.wait(60) == 0, proc.output()
    finally:
        proc.stop()
    out = proc.output()

    # every request answered, counted once: the bound is exact when a pod is drained before it dies
    final = re.search(r"^final: (\d+) requests answered, (\S+) counted by the central store", out, re.M)
    assert final, out
    answered, counted = int(final.group(1)), final.group(2)
    assert answered > 300 and counted == str(answered), out
    drained = r"replaced pod app-2 \(drained: (\d+) answered, \1 counted centrally; killed\)"
    assert re.search(drained, out), out

    # per-pod series, told apart by pod and instance (the relabeling of the Kubernetes job), the live ones
    # and the replacement's
    labels = [series for series, _ in per_pod]
    pods = {series["pod"] for series in labels}
    assert {"app-1", "app-3", "app-4"} <= pods, labels
    assert all(s["instance"] == s["pod"] and s["namespace"] == "demo" for s in labels), labels
    # the rules, evaluated centrally over every pod: recorded series with no pod or instance left in them
    assert recorded, out
    assert all(s["service"] == SERVICE and not {"pod", "instance"} & set(s) for s, _ in recorded), recorded
    assert "[central store, last 1m] requests" in out

    # nothing left: no namespace or link of this run, none of the processes it ran
    assert netns.names_with_prefix(netns.namespaces(), prefix) == []
    assert netns.names_with_prefix(netns.links(), prefix) == []
    assert len(seen) >= 3 * 7, seen  # per pod an exporter and uwsgi's master + 5 workers, at least
    assert [pid for pid in seen if alive(pid)] == []
    assert "removed the pods' network namespaces and links" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--pods", "1"], "--pods: 1 is out of range (2 to 20)"),
        (["--pods", "3", "--scrape-interval", "0"], "--scrape-interval: 0 is out of range"),
    ],
)
def test_pods_options_out_of_range_are_refused_naming_the_flag(argv, message, capsys):
    assert demo.main(argv) == 2
    assert message in capsys.readouterr().err


def test_pods_without_root_say_so_before_starting_anything(monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert demo.main(["--pods", "3", "--prometheus-port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--pods needs root" in err
