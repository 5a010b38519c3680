"""Fixtures shared by the whole suite; helpers live in tests/helpers.py.

Two layers: unit tests (in-process, real sockets on 127.0.0.1 allowed) and end-to-end tests, marked
``e2e``, which start real servers or tools (uwsgi, gunicorn, uvicorn, Prometheus, promtool, the exporter as a
process, a package build) or run whole programs differentially through the original libraries and exporters.
``make test-fast`` runs ``-m "not e2e"``; there, a test that starts a process without the marker fails and
says so, so the fast layer stays fast as tests are added.
"""

from __future__ import annotations

import socket
import subprocess

import pytest
from hypothesis import settings

from statsd_instrument import Client
from statsd_instrument.stack.commands import exporter_argv
from tests.helpers import REPO, ManagedProcess, UdpCollector, free_port, wait_for_port

# Hypothesis' default 200 ms deadline per example is a timed assertion: on a loaded 2-core machine it fails
# tests that are correct. Speed is measured in benchmarks, never asserted.
settings.register_profile("statsd_instrument", deadline=None)
settings.load_profile("statsd_instrument")


@pytest.fixture
def udp_collector():
    """A UDP listener on 127.0.0.1:<random port> collecting every datagram it receives."""
    collector = UdpCollector()
    yield collector
    collector.close()


@pytest.fixture
def production():
    """A client in production mode (bad calls dropped, counted, logged once) sending nowhere."""
    c = Client(protocol="null", strict=False)
    yield c
    c.close()


@pytest.fixture
def exporter(tmp_path):
    """The embedded exporter with the shipped mapping: (statsd UDP port, /metrics URL)."""
    udp, web = free_port(socket.SOCK_DGRAM), free_port()
    proc = ManagedProcess(
        exporter_argv(REPO / "exporter-mapping.yml", udp, web), log=tmp_path / "exporter.log"
    )
    try:
        wait_for_port(web, proc=proc.proc)
        yield udp, f"http://127.0.0.1:{web}/metrics"
    finally:
        proc.stop()


@pytest.fixture(autouse=True)
def _unit_layer_starts_no_process(request, monkeypatch):
    """In the unit layer (``-m "not e2e"``), starting a process is a missing ``e2e`` marker."""
    if request.config.option.markexpr != "not e2e" or request.node.get_closest_marker("e2e"):
        return

    def refused(args, *rest, **kwargs):
        raise AssertionError(f"{request.node.nodeid} starts a process ({args!r}): mark it e2e")

    monkeypatch.setattr(subprocess, "Popen", refused)


#: doctests that start a process (a doctest item cannot carry a marker in its own text)
E2E_DOCTESTS = {"tests.helpers.ManagedProcess"}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.name in E2E_DOCTESTS:
            item.add_marker(pytest.mark.e2e)
