"""The exporter end to end: the CLI process with statsd_exporter's flags, and the in-process ``Exporter``."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from statsd_instrument.exporter import Exporter
from statsd_instrument.exporter.ingest import Ingestor
from statsd_instrument.mapping import parse_mapping
from tests.helpers import REPO, ManagedProcess, free_port, http_get, scrape, scrape_until, wait_for_port

LABELS = (("endpoint", "/user/<int:id>"), ("method", "GET"), ("service", "api"), ("status", "200"))
TAGS = "service:api,method:GET,endpoint:/user/<int:id>,status:200"


def _send_udp(port: int, payload: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(payload, ("127.0.0.1", port))


@pytest.mark.e2e
def test_cli_process_serves_udp_tcp_unixgram_reloads_and_exits_cleanly(tmp_path):
    mapping = tmp_path / "mapping.yml"
    mapping.write_text((REPO / "exporter-mapping.yml").read_text())
    shipped_rules = len(parse_mapping(mapping.read_text()).rules)
    udp_port, web_port = free_port(socket.SOCK_DGRAM), free_port()
    sock_path = str(tmp_path / "statsd.sock")
    proc = ManagedProcess(
        [
            sys.executable,
            "-m",
            "statsd_instrument.cli",
            "exporter",
            f"--statsd.listen-udp=127.0.0.1:{udp_port}",
            "--statsd.listen-tcp",
            f"127.0.0.1:{udp_port}",
            f"--statsd.listen-unixgram={sock_path}",
            "--web.listen-address",
            f"127.0.0.1:{web_port}",
            f"--statsd.mapping-config={mapping}",
            "--web.enable-lifecycle",
            "--no-statsd.parse-influxdb-tags",
        ],
        log=tmp_path / "exporter.log",
    )
    url = f"http://127.0.0.1:{web_port}/metrics"
    try:
        wait_for_port(web_port, proc=proc.proc)
        _send_udp(udp_port, f"request_count:1|c|#{TAGS}\nrequest_latency_seconds:30|ms|#{TAGS}".encode())
        with socket.create_connection(("127.0.0.1", udp_port)) as tcp:
            tcp.sendall(f"request_count:2|c|#{TAGS}\r\nweird,k=v:1|c\n".encode())
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unix:
            unix.sendto(f"request_exceptions:1|c|#{TAGS},exception:KeyError".encode(), sock_path)
        samples = scrape_until(url, ("http_requests_total", LABELS), 3.0)
        assert samples[("http_requests_total", LABELS)] == 3.0
        assert (
            samples[("http_request_duration_seconds_bucket", tuple(sorted((*LABELS, ("le", "0.05")))))] == 1.0
        )
        assert (
            samples[("http_request_duration_seconds_bucket", tuple(sorted((*LABELS, ("le", "0.025")))))]
            == 0.0
        )
        assert samples[("http_request_duration_seconds_sum", LABELS)] == 0.03
        exc_labels = tuple(sorted((*LABELS, ("exception", "KeyError"))))
        assert samples[("http_request_exceptions_total", exc_labels)] == 1.0
        assert samples[("weird_k_v_total", ())] == 1.0  # influxdb tags off: the comma stays in the name
        assert samples[("statsd_exporter_tcp_connections_total", ())] == 1.0
        assert samples[("statsd_exporter_unixgram_packets_total", ())] == 1.0
        assert samples[("statsd_exporter_loaded_mappings", ())] == shipped_rules

        # SIGHUP reloads the edited file; existing series keep their values.
        mapping.write_text(mapping.read_text() + '  - match: "jobs.*"\n    name: "jobs_${1}_total"\n')
        os.kill(proc.pid, signal.SIGHUP)
        samples = scrape_until(url, ("statsd_exporter_loaded_mappings", ()), shipped_rules + 1.0)
        assert samples[("statsd_exporter_loaded_mappings", ())] == shipped_rules + 1
        assert samples[("http_requests_total", LABELS)] == 3.0
        _send_udp(udp_port, b"jobs.cleanup:1|c")
        assert scrape_until(url, ("jobs_cleanup_total", ()), 1.0)[("jobs_cleanup_total", ())] == 1.0

        # POST /-/reload with a broken file keeps the old mapping and counts the failure.
        mapping.write_text("mappings:\n- match: a.b\n")
        status, _ = http_get(f"http://127.0.0.1:{web_port}/-/reload", method="POST")
        assert status == 500
        samples = scrape(url)
        assert samples[("statsd_exporter_config_reloads_total", (("outcome", "failure"),))] == 1.0
        assert samples[("statsd_exporter_loaded_mappings", ())] == shipped_rules + 1
        assert http_get(f"http://127.0.0.1:{web_port}/-/reload")[0] == 405
    finally:
        code = proc.stop()
    assert code == 0, proc.output()
    assert not os.path.exists(sock_path)


def test_check_config_flag_refuses_a_bad_mapping_with_its_line(tmp_path, capsys):
    from statsd_instrument.exporter.cli import main

    bad = tmp_path / "bad.yml"
    bad.write_text("mappings:\n- match: a.b\n  name: ok\n  labels: {k: v}\n")
    assert main(["--check-config", f"--statsd.mapping-config={bad}"]) == 1
    assert f"{bad}:4: error: mappings[0].labels.k" in capsys.readouterr().err
    assert main(["--check-config", "--statsd.mapping-config", str(REPO / "exporter-mapping.yml")]) == 0


def test_empty_listen_address_disables_the_listener():
    with Exporter(udp="127.0.0.1:0", tcp="", web="") as exporter:
        assert exporter.udp_port > 0
        assert exporter.tcp_port == 0
        assert exporter.web_port == 0


def test_no_listener_at_all_is_an_error(capsys):
    from statsd_instrument.exporter.cli import main

    assert main(["--statsd.listen-udp=", "--statsd.listen-tcp="]) == 1
    assert "At least one of UDP/TCP/Unixgram" in capsys.readouterr().err


def test_tcp_line_too_long_closes_the_connection_and_is_counted():
    with Exporter(udp="", tcp="127.0.0.1:0", web="127.0.0.1:0") as exporter:
        with socket.create_connection(("127.0.0.1", exporter.tcp_port)) as tcp:
            tcp.sendall(b"ok:1|c\n" + b"x" * 5000 + b":1|c\n")
            tcp.settimeout(5)
            assert tcp.recv(10) == b""  # closed by the exporter
        samples = scrape_until(exporter.metrics_url, ("statsd_exporter_tcp_too_long_lines_total", ()), 1.0)
        assert samples[("statsd_exporter_tcp_too_long_lines_total", ())] == 1.0
        assert samples[("ok_total", ())] == 1.0


def test_series_expire_after_their_ttl_and_others_stay():
    config = parse_mapping("mappings:\n- {match: short, name: short, ttl: 10s}\n")
    ingest = Ingestor(config)
    ingest.handle_datagram(b"short:1|c\nkeep:1|c", now=100.0)
    ingest.handle_datagram(b"short:1|c", now=105.0)  # refreshes the series
    assert "short 2" in ingest.render(now=114.0)
    page = ingest.render(now=115.0)
    assert "short" not in page.replace("statsd_exporter", "")
    assert "keep 1" in page
    ingest.handle_datagram(b"short:1|c", now=116.0)  # a new series starts from zero
    assert "short 1" in ingest.render(now=116.0)


def test_reload_keeps_series_and_applies_new_rules_to_new_events():
    ingest = Ingestor(parse_mapping("mappings:\n- {match: a.*, name: 'old_${1}'}\n"))
    ingest.handle_datagram(b"a.x:1|c\na.x:1|c", now=0.0)
    ingest.reload(parse_mapping("mappings:\n- {match: a.*, name: 'new_${1}'}\n"))
    ingest.handle_datagram(b"a.x:5|c", now=1.0)
    page = ingest.render(now=1.0)
    assert "old_x 2" in page
    assert "new_x 5" in page


def test_health_ready_and_landing_pages():
    with Exporter(udp="127.0.0.1:0", web="127.0.0.1:0", telemetry_path="/stats") as exporter:
        base = f"http://127.0.0.1:{exporter.web_port}"
        assert http_get(base + "/-/healthy")[0] == 200
        assert http_get(base + "/-/ready")[0] == 200
        assert b'href="/stats"' in http_get(base + "/")[1]
        assert http_get(base + "/-/reload", method="POST")[0] == 404  # lifecycle not enabled
        assert http_get(base + "/stats")[0] == 200


def test_a_steady_stream_and_a_burst_are_read_in_full_while_the_listener_pauses_between_reads():
    from statsd_instrument.exporter.listeners import ListenerLoop

    ingest = Ingestor(parse_mapping("{}"))
    loop = ListenerLoop(ingest, udp="127.0.0.1:0")
    loop.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(200):  # one datagram now and then, as web requests end
                s.sendto(b"steady:1|c\nsteady_ms:2|ms", ("127.0.0.1", loop.udp_port))
                if i % 20 == 0:
                    time.sleep(0.002)
            assert loop.wait_for_packets(200)
            for _ in range(1000):  # a burst: more than one pause's worth
                s.sendto(b"burst:1|c", ("127.0.0.1", loop.udp_port))
        assert loop.wait_for_packets(1200)
    finally:
        loop.stop()
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(ingest.render())
        for sample in family.samples
    }
    assert (
        samples["steady_total"] == 200
        and samples["steady_ms_count"] == 200
        and samples["burst_total"] == 1000
    )
    assert ingest.current_stats().udp_packets == 1200


def test_series_limit_refuses_new_series_counts_them_keeps_old_ones_and_frees_room_on_expiry(capsys):
    ingest = Ingestor(parse_mapping("defaults: {ttl: 10s}"), max_series=3)
    ingest.handle_datagram(b"\n".join(b"n%d:1|c" % i for i in range(5)), now=0.0)
    ingest.handle_datagram(b"n0:1|c\nn1:1|c|#new:label", now=5.0)  # n1{new} would be a fourth series
    page = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(ingest.render(now=5.0))
        for s in f.samples
    }
    assert page[("n0_total", ())] == 2 and ("n3_total", ()) not in page
    assert page[("statsd_exporter_events_error_total", (("reason", "series_limit"),))] == 3
    assert capsys.readouterr().err.count("series reached") == 1  # logged once
    ingest.expire(now=12.0)  # n1, n2 expire (n0 was updated at 5 s): room for two new series
    ingest.handle_datagram(b"n3:1|c\nn4:1|c", now=12.0)
    assert ingest.store.series_count == 3 and ingest.stats.event_errors["series_limit"] == 3
    assert Ingestor(parse_mapping("{}"), max_series=0).store.max_series == 0  # 0: no limit
