"""Fixtures shared by the whole suite; helpers live in tests/helpers.py."""

from __future__ import annotations

import pytest

from tests.helpers import UdpCollector


@pytest.fixture
def udp_collector():
    """A UDP listener on 127.0.0.1:<random port> collecting every datagram it receives."""
    collector = UdpCollector()
    yield collector
    collector.close()
