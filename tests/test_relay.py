"""The migration relay forwards every datagram unchanged to all targets, and survives a dead target."""

from __future__ import annotations

import signal
import socket
import sys

import pytest

from tests.helpers import ManagedProcess, UdpCollector, free_port, wait_until


@pytest.mark.e2e
def test_relay_process_copies_each_datagram_to_exporter_and_old_statsd(tmp_path):
    exporter, old_statsd = UdpCollector(), UdpCollector()
    listen = free_port(socket.SOCK_DGRAM)
    dead = free_port(socket.SOCK_DGRAM)  # nothing listens: its copies are lost, the others are not
    relay = ManagedProcess(
        [
            sys.executable, "-m", "statsd_instrument.legacy.relay", f"--listen=127.0.0.1:{listen}",
            f"--to=127.0.0.1:{exporter.port}", f"--to=127.0.0.1:{dead}", f"--to=127.0.0.1:{old_statsd.port}",
        ],
        log=tmp_path / "relay.log",
    )  # fmt: skip
    sent = [b"shop.cart.GET.200:1|c\nshop.cart.GET.200:12.5|ms", b"shop.queue.size:+3|g|#region:eu"]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as app:
            # the relay binds after start-up: send until the first datagram comes through
            for _ in range(200):
                app.sendto(b"warmup:1|c", ("127.0.0.1", listen))
                if exporter.wait_for_lines(1, timeout_s=0.05):
                    break
            for payload in sent:
                app.sendto(payload, ("127.0.0.1", listen))
        expected = ["shop.cart.GET.200:1|c", "shop.cart.GET.200:12.5|ms", "shop.queue.size:+3|g|#region:eu"]
        for collector in (exporter, old_statsd):

            def relayed(c: UdpCollector = collector) -> list[str]:
                return [ln for ln in c.lines() if ln != "warmup:1|c"]

            wait_until(lambda: len(relayed()) >= len(expected), timeout_s=10)
            assert relayed() == expected
            assert sent[0] in collector.datagrams  # one datagram in, the same datagram out
    finally:
        code = relay.stop(signal.SIGTERM)
        exporter.close()
        old_statsd.close()
    assert code == 0, relay.output()
