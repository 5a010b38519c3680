"""Fixtures shared by the whole suite; helpers live in tests/helpers.py."""

from __future__ import annotations

import socket
import sys

import pytest

from statsd_instrument import Client
from tests.helpers import REPO, ManagedProcess, UdpCollector, free_port, wait_for_port


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
        [
            sys.executable,
            "-m",
            "statsd_instrument.cli",
            "exporter",
            f"--statsd.listen-udp=127.0.0.1:{udp}",
            "--statsd.listen-tcp=",
            f"--web.listen-address=127.0.0.1:{web}",
            f"--statsd.mapping-config={REPO / 'exporter-mapping.yml'}",
        ],
        log=tmp_path / "exporter.log",
    )
    try:
        wait_for_port(web, proc=proc.proc)
        yield udp, f"http://127.0.0.1:{web}/metrics"
    finally:
        proc.stop()
