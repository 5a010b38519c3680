"""End to end: Flask, bare WSGI and Django examples under real uwsgi (5 workers, recycled) push exact counts.

Traffic: 3,000 GET /test/, 1,000 GET /test1/ (ZeroDivisionError), 500 random unknown paths and 200 random
HTTP methods, sent by 4 threads. What the workers pushed must match, per (method, endpoint, status), what the
client saw; label values stay within small fixed sets; every request is timed; 1,000 exceptions are counted.
"""

from __future__ import annotations

import collections
import random
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import REPO, ManagedProcess, free_port, http_get, python_bin, wait_for_port

SERVICE = "e2e"
STANDARD = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
UNMATCHED = "<unmatched>"


def plan(rng: random.Random) -> list[tuple[str, str, str]]:
    """(method, path, expected endpoint label) for every request, shuffled."""
    requests = [("GET", "/test/", "/test/")] * 3000 + [("GET", "/test1/", "/test1/")] * 1000
    requests += [("GET", f"/{uuid.UUID(int=rng.getrandbits(128)).hex}/x", UNMATCHED) for _ in range(500)]
    for _ in range(200):
        if rng.random() < 0.5:
            method = rng.choice(STANDARD)
        else:  # a random token: must collapse into one "OTHER" label
            method = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(3, 12)))
        user = rng.randint(1, 10**6)
        path, endpoint = rng.choice([("/test/", "/test/"), (f"/user/{user}", "/user/<int:user_id>")])
        requests.append((method, path, endpoint))
    rng.shuffle(requests)
    return requests


def drive(port: int, requests: list[tuple[str, str, str]], threads: int = 4) -> collections.Counter:
    """Send with bounded concurrency; count what the client saw per (method label, endpoint, status)."""
    seen: collections.Counter = collections.Counter()
    lock = threading.Lock()
    chunks = [requests[i::threads] for i in range(threads)]
    errors: list[BaseException] = []

    def worker(chunk: list[tuple[str, str, str]]) -> None:
        try:
            for method, path, endpoint in chunk:
                status, _ = http_get(f"http://127.0.0.1:{port}{path}", method=method)
                label = method if method in STANDARD else "OTHER"
                with lock:
                    seen[(label, endpoint, str(status))] += 1
        except BaseException as error:  # surfaced below, in the test thread
            errors.append(error)

    pool = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors
    return seen


def parse_lines(lines: list[str]) -> dict[str, list[tuple[float, dict[str, str]]]]:
    """DogStatsD lines -> {name: [(value, tags)]} (value in the line's own unit)."""
    out: dict[str, list[tuple[float, dict[str, str]]]] = collections.defaultdict(list)
    for line in lines:
        head, *fields = line.split("|")
        name, value = head.split(":", 1)
        tags = {}
        for field in fields[1:]:
            if field.startswith("#"):
                tags = dict(t.split(":", 1) for t in field[1:].split(","))
        out[name].append((float(value), tags))
    return out


def settled_lines(collector, at_least: int) -> list[str]:
    """The collector's lines once at least ``at_least`` arrived and no more came for 0.3 s."""
    lines = collector.wait_for_lines(at_least)
    while True:
        time.sleep(0.3)
        if len(collector.lines()) == len(lines):
            return lines
        lines = collector.lines()


def run_app(ini: Path, statsd_port: int, tmp_path: Path, **env: str) -> tuple[ManagedProcess, int]:
    port = free_port()
    proc = ManagedProcess(
        [
            python_bin("uwsgi"),
            "--ini",
            str(ini),
            "--http-socket",
            f"127.0.0.1:{port}",
            "--max-requests",
            "250",  # every worker is recycled several times during the run ...
            "--min-worker-lifetime",
            "0",  # ... (uwsgi otherwise keeps a worker at least 10 s whatever its request count)
            "--disable-logging",
        ],
        env={"STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(statsd_port), "STATSD_SERVICE": SERVICE, **env},
        log=tmp_path / f"uwsgi-{ini.parent.name}.log",
    )
    wait_for_port(port, proc=proc.proc)
    return proc, port


@pytest.mark.parametrize("example", ["flask_app", "wsgi_app", "django_app"])
def test_counts_per_route_are_exact_under_five_recycled_uwsgi_workers(example, udp_collector, tmp_path):
    requests = plan(random.Random(1234))
    in_flight = {"STATSD_IN_FLIGHT": "1"} if example == "flask_app" else {}
    proc, port = run_app(REPO / "examples" / example / "uwsgi.ini", udp_collector.port, tmp_path, **in_flight)
    try:
        assert http_get(f"http://127.0.0.1:{port}/health")[0] == 200  # excluded: sends nothing
        seen = drive(port, requests)
    finally:
        proc.stop()
    assert proc.output().count("Respawned uWSGI worker") >= 10  # recycling really happened

    metrics = parse_lines(settled_lines(udp_collector, at_least=2 * len(requests)))

    def key(tags: dict[str, str]) -> tuple[str, str, str]:
        return (tags["method"], tags["endpoint"], tags["status"])

    pushed: collections.Counter = collections.Counter()
    for value, tags in metrics["request_count"]:
        assert tags["service"] == SERVICE
        pushed[key(tags)] += int(value)
    assert pushed == seen
    assert sum(seen.values()) == len(requests) == 4700
    assert seen[("GET", "/test/", "200")] == sum(1 for m, p, _ in requests if (m, p) == ("GET", "/test/"))
    assert seen[("GET", "/test1/", "500")] == 1000
    assert seen[("GET", UNMATCHED, "404")] == 500

    # bounded label values: random paths and methods did not create new ones
    endpoints = {tags["endpoint"] for _, tags in metrics["request_count"]}
    assert endpoints == {"/test/", "/test1/", "/user/<int:user_id>", UNMATCHED}
    methods = {tags["method"] for _, tags in metrics["request_count"]}
    assert methods <= set(STANDARD) | {"OTHER"} and "OTHER" in methods

    # every request timed, in milliseconds on the wire; the mean is a plausible latency in seconds
    timed = collections.Counter(key(tags) for _, tags in metrics["request_latency_seconds"])
    assert timed == seen
    latencies_s = [value / 1000 for value, _ in metrics["request_latency_seconds"]]
    assert all(v > 0 for v in latencies_s)
    assert 0 < sum(latencies_s) / len(latencies_s) < 1.0

    exceptions = collections.Counter(
        (tags["endpoint"], tags["exception"]) for _, tags in metrics["request_exceptions"]
    )
    assert exceptions == {("/test1/", "ZeroDivisionError"): 1000}

    if in_flight:  # +1 at every start, -1 at every end, from every worker: back to 0 once all is served
        deltas = [value for value, _ in metrics["request_in_flight"]]
        assert len(deltas) == 2 * len(requests)
        assert sum(deltas) == 0
