"""``--statsd.relay.address``: every received line goes unchanged to the old statsd server and is exported."""

from __future__ import annotations

import socket
import sys

import pytest

from statsd_instrument.exporter import Exporter
from statsd_instrument.exporter.cli import main
from tests.helpers import REPO, ManagedProcess, UdpCollector, free_port, scrape, scrape_until, wait_for_port

LEGACY = (("endpoint", "checkout"), ("method", "GET"), ("service", "shop"), ("status", "200"))


@pytest.mark.e2e
def test_cli_relays_every_received_line_unchanged_and_exports_it_too(tmp_path):
    old_statsd = UdpCollector()
    udp_port, web_port = free_port(socket.SOCK_DGRAM), free_port()
    target = f"127.0.0.1:{old_statsd.port}"
    proc = ManagedProcess(
        [
            sys.executable, "-m", "statsd_instrument.cli", "exporter",
            f"--statsd.listen-udp=127.0.0.1:{udp_port}", f"--statsd.listen-tcp=127.0.0.1:{udp_port}",
            f"--web.listen-address=127.0.0.1:{web_port}",
            f"--statsd.mapping-config={REPO / 'exporter-mapping.yml'}",
            f"--statsd.relay.address={target}", "--statsd.relay.packet-length", "64",
        ],
        log=tmp_path / "exporter.log",
    )  # fmt: skip
    url = f"http://127.0.0.1:{web_port}/metrics"
    long_line = "shop." + "x" * 70 + ":1|c"  # longer than packet-length - 1: not relayed, still exported
    udp_lines = ["shop.checkout.GET.200:1|c", "shop.checkout.GET.200:12.5|ms", "not a statsd line", long_line]
    tcp_lines = ["shop.checkout.GET.200:2|c", "shop.queue.size:+3|g|#region:eu"]
    try:
        wait_for_port(web_port, proc=proc.proc)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as app:
            app.sendto(("\n".join(udp_lines) + "\n").encode(), ("127.0.0.1", udp_port))
        with socket.create_connection(("127.0.0.1", udp_port)) as tcp:
            tcp.sendall(("\r\n".join(tcp_lines) + "\n").encode())
        relayed = [*udp_lines[:3], *tcp_lines]  # the invalid line too; not the long one, no empty line
        assert old_statsd.wait_for_lines(len(relayed)) == relayed
        assert all(len(d) <= 64 and d.endswith(b"\n") for d in old_statsd.datagrams)
        assert len(old_statsd.datagrams) >= 3  # 5 lines of 18-32 bytes cannot share fewer 64-byte packets

        samples = scrape_until(url, ("http_requests_total", LEGACY), 3.0)
        assert samples[("http_requests_total", LEGACY)] == 3.0  # exported as well as relayed
        assert samples[("http_request_duration_seconds_sum", LEGACY)] == 0.0125
        assert samples[("shop_" + "x" * 70 + "_total", ())] == 1.0
        by_target = (("target", target),)
        assert samples[("statsd_exporter_relay_lines_relayed_total", by_target)] == len(relayed)
        assert samples[("statsd_exporter_relay_long_lines_total", by_target)] == 1.0
        assert samples[("statsd_exporter_relay_packets_total", by_target)] == len(old_statsd.datagrams)
        assert samples[("statsd_exporter_sample_errors_total", (("reason", "malformed_line"),))] == 1.0
    finally:
        code = proc.stop()
        old_statsd.close()
    assert code == 0, proc.output()


def test_in_process_exporter_relays_to_several_targets_and_a_dead_one_costs_only_its_copy():
    first, second = UdpCollector(), UdpCollector()
    dead = free_port(socket.SOCK_DGRAM)  # nothing listens there
    targets = [f"127.0.0.1:{first.port}", f"127.0.0.1:{dead}", f"127.0.0.1:{second.port}"]
    try:
        with Exporter(udp="127.0.0.1:0", web="127.0.0.1:0", relay=targets) as exporter:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as app:
                for n in range(3):
                    app.sendto(f"jobs.done:{n}|c".encode(), ("127.0.0.1", exporter.udp_port))
                    assert exporter.wait_for_packets(n + 1)
            expected = ["jobs.done:0|c", "jobs.done:1|c", "jobs.done:2|c"]
            assert first.wait_for_lines(3) == expected and second.wait_for_lines(3) == expected
            assert scrape(exporter.metrics_url)[("jobs_done_total", ())] == 3.0
    finally:
        first.close()
        second.close()


def test_a_bad_relay_address_stops_start_up_naming_flag_and_value(capsys):
    argv = ["--statsd.listen-udp=127.0.0.1:0", "--statsd.listen-tcp=", "--web.listen-address=127.0.0.1:0"]
    assert main([*argv, "--statsd.relay.address=old-statsd"]) == 1
    assert "--statsd.relay.address='old-statsd': expected HOST:PORT" in capsys.readouterr().err
    assert main([*argv, "--statsd.relay.address=127.0.0.1:8125", "--statsd.relay.packet-length=0"]) == 1
    assert "--statsd.relay.packet-length=0" in capsys.readouterr().err
