"""The built distribution: a client with no third-party dependency, and a demo that runs outside any checkout.

The wheel is built the way a release is (``python -m build``: sdist first, then the wheel from the sdist), and
installed into a fresh virtualenv in a directory that is no checkout.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from statsd_instrument.stack.files import REQUIRED
from tests.helpers import REPO, UdpCollector, free_port

pytestmark = pytest.mark.e2e


def run(argv: list[str], cwd: Path, timeout_s: float = 600, **env: str) -> subprocess.CompletedProcess:
    # the fresh venv must not see this checkout or this test run's own environment
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "STATSD_"))}
    return subprocess.run(
        argv, cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=timeout_s, check=False
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], cwd=out)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.fixture(scope="module")
def venv(tmp_path_factory, dist) -> Path:
    """A fresh virtualenv with the wheel installed, no extras."""
    where = tmp_path_factory.mktemp("venv")
    assert run([sys.executable, "-m", "venv", str(where)], cwd=where).returncode == 0
    wheel = next(dist.glob("statsd_instrument-*.whl"))
    done = run([str(where / "bin" / "pip"), "install", "-q", str(wheel)], cwd=where)
    assert done.returncode == 0, done.stdout + done.stderr
    return where


def test_the_wheel_carries_the_stack_files_as_copies_of_the_top_level_ones(dist):
    wheel = next(dist.glob("statsd_instrument-*.whl"))
    prefix = "statsd_instrument/_stack/"
    with zipfile.ZipFile(wheel) as zf:
        carried = {name[len(prefix) :]: zf.read(name) for name in zf.namelist() if name.startswith(prefix)}
    assert set(REQUIRED) <= set(carried)
    assert any(name.startswith("prometheus/rules/") for name in carried)
    for rel, content in carried.items():
        assert content == (REPO / rel).read_bytes(), rel


def test_the_client_installs_with_no_third_party_dependency_and_sends(venv, tmp_path):
    listed = run([str(venv / "bin" / "pip"), "list", "--format=json"], cwd=tmp_path)
    names = {p["name"].lower().replace("-", "_") for p in json.loads(listed.stdout)}
    assert names - {"pip", "setuptools"} == {"statsd_instrument"}

    collector = UdpCollector()
    try:
        code = (
            "import sys; from statsd_instrument import statsd; "
            "statsd.increment('orders', tags=['status:paid']); statsd.flush(); "
            "print(sorted(m for m in ('yaml', 'prometheus_client', 'flask') if m in sys.modules))"
        )
        done = run(
            [str(venv / "bin" / "python"), "-c", code],
            cwd=tmp_path,
            STATSD_HOST="127.0.0.1",
            STATSD_PORT=str(collector.port),
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]"
        assert collector.wait_for_lines(1) == ["orders:1|c|#status:paid"]
    finally:
        collector.close()


def test_a_tool_that_needs_an_extra_names_the_extra(venv, tmp_path):
    done = run([str(venv / "bin" / "statsd-instrument"), "check-mapping", "x.yml"], cwd=tmp_path)
    assert done.returncode == 2
    assert "pip install 'statsd_instrument[exporter]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert run([str(venv / "bin" / "statsd-instrument"), "--help"], cwd=tmp_path).returncode == 0


def test_the_demo_extra_runs_the_demo_outside_any_checkout(venv, dist, tmp_path):
    wheel = next(dist.glob("statsd_instrument-*.whl"))
    done = run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[demo]"], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    ports = [
        "--app-port",
        str(free_port()),
        "--exporter-port",
        str(free_port()),
        "--statsd-port",
        str(free_port(socket.SOCK_DGRAM)),
    ]
    demo_argv = [str(venv / "bin" / "statsd-instrument"), "demo", "--no-prometheus", "--duration", "8"]
    demo = run(
        [*demo_argv, "--interval", "2", *ports],
        cwd=tmp_path,
        timeout_s=120,
        PATH=f"{venv / 'bin'}:/usr/bin:/bin",
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert f"stack files in {venv}" in demo.stdout and "_stack" in demo.stdout
    assert "[exporter, since start] requests" in demo.stdout
    assert "nothing left listening" in demo.stdout
