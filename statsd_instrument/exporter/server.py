"""The embedded exporter: statsd listeners plus the HTTP server (``/metrics``, ``/-/reload``, health).

``Exporter`` runs in-process (tests, the demo) with ``start()``/``stop()`` and exposes the bound ports;
``statsd-instrument exporter`` wraps the same class.

>>> exporter = Exporter(udp="127.0.0.1:0", tcp="", web="127.0.0.1:0")
>>> exporter.start()
>>> with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
...     _ = s.sendto(b"hits:1|c|#code:200", ("127.0.0.1", exporter.udp_port))
>>> exporter.wait_for_packets(1)
True
>>> import urllib.request
>>> with urllib.request.urlopen(exporter.metrics_url) as response:
...     'hits{code="200"} 1' in response.read().decode()
True
>>> exporter.stop()
"""

from __future__ import annotations

import http.server
import socket
import sys
import threading
from pathlib import Path
from typing import Callable, Sequence, Union

from statsd_instrument.exporter.exposition import CONTENT_TYPE
from statsd_instrument.exporter.ingest import Ingestor
from statsd_instrument.exporter.lineparser import DEFAULT_FLAGS, ParserFlags
from statsd_instrument.exporter.listeners import ListenerLoop, parse_address
from statsd_instrument.exporter.relay import DEFAULT_PACKET_LENGTH, LineRelay
from statsd_instrument.exporter.store import DEFAULT_MAX_SERIES
from statsd_instrument.mapping import MappingConfig, MappingError, load_mapping, parse_mapping

_LANDING = """<html>
<head><title>StatsD Exporter (statsd_instrument)</title></head>
<body>
<h1>StatsD Exporter</h1>
<p><a href="{path}">Metrics</a></p>
</body>
</html>
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:
        pass

    def _send(self, status: int, body: str, content_type: str = "text/plain; charset=utf-8") -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _route(self) -> None:
        exporter = self.server.exporter
        path = self.path.split("?", 1)[0]
        if path == exporter.telemetry_path:
            try:
                body = exporter.ingest.render()
            except Exception as err:  # /metrics must answer even if rendering hits a bug
                print(f"statsd-instrument exporter: render error: {err!r}", file=sys.stderr)
                self._send(500, f"error rendering metrics: {err!r}\n")
                return
            self._send(200, body, CONTENT_TYPE)
        elif path == "/-/healthy":
            self._send(200, "Statsd Exporter is Healthy.\n")
        elif path == "/-/ready":
            self._send(200, "Statsd Exporter is Ready.\n")
        elif path in ("/-/reload", "/-/quit") and exporter.enable_lifecycle:
            if self.command not in ("POST", "PUT"):
                self._send(405, "This endpoint requires a PUT or POST request.\n")
            elif path == "/-/reload":
                ok = exporter.reload()
                self._send(200 if ok else 500, "Requesting reload\n" if ok else "Reload failed\n")
            else:
                self._send(200, "Requesting termination... Goodbye!\n")
                if exporter.on_quit is not None:
                    exporter.on_quit()
        elif path == "/":
            self._send(200, _LANDING.format(path=exporter.telemetry_path), "text/html; charset=utf-8")
        else:
            self._send(404, "404 page not found\n")

    do_GET = do_POST = do_PUT = do_HEAD = _route  # noqa: N815 - stdlib naming


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    exporter: Exporter

    def __init__(self, address: tuple, exporter: Exporter) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.exporter = exporter


class Exporter:
    """A statsd_exporter emulation in this process: statsd in on UDP/TCP/unixgram, ``/metrics`` out.

    Empty addresses disable a listener. Ports given as 0 are chosen by the OS; read them after
    ``start()`` from ``udp_port``, ``tcp_port``, ``web_port``. ``relay`` (one ``host:port`` or several)
    copies every received line there, as ``--statsd.relay.address`` does
    (:mod:`statsd_instrument.exporter.relay`).

    >>> exporter = Exporter(udp="", tcp="127.0.0.1:0", web="")
    >>> exporter.start(); exporter.tcp_port > 0
    True
    >>> exporter.stop()
    """

    def __init__(
        self,
        mapping: Union[str, Path, MappingConfig, None] = None,
        udp: str = "127.0.0.1:0",
        tcp: str = "",
        unixgram: str = "",
        web: str = "127.0.0.1:0",
        telemetry_path: str = "/metrics",
        enable_lifecycle: bool = False,
        flags: ParserFlags = DEFAULT_FLAGS,
        read_buffer: int = 0,
        unixsocket_mode: str = "755",
        relay: Sequence[str] = (),
        relay_packet_length: int = DEFAULT_PACKET_LENGTH,
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> None:
        self.mapping_path = None if mapping is None or isinstance(mapping, MappingConfig) else str(mapping)
        if isinstance(mapping, MappingConfig):
            config = mapping
        elif self.mapping_path:
            config = load_mapping(self.mapping_path)
        else:
            config = parse_mapping("{}")
        self.ingest = Ingestor(config, flags, max_series)
        self.listeners = ListenerLoop(self.ingest, udp, tcp, unixgram, unixsocket_mode, read_buffer)
        self.relay_targets = [relay] if isinstance(relay, str) else list(relay)
        self.relay_packet_length = relay_packet_length
        self.web_address = web
        self.telemetry_path = telemetry_path
        self.enable_lifecycle = enable_lifecycle
        self.on_quit: Callable[[], None] | None = None
        self.web_port = 0
        self._http: _HTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._reload_lock = threading.Lock()

    @property
    def udp_port(self) -> int:
        """The bound UDP port (0 if UDP is disabled).

        >>> Exporter(udp="").udp_port
        0
        """
        return self.listeners.udp_port

    @property
    def tcp_port(self) -> int:
        """The bound TCP port (0 if TCP is disabled).

        >>> Exporter().tcp_port
        0
        """
        return self.listeners.tcp_port

    @property
    def metrics_url(self) -> str:
        """``http://host:port/metrics`` of the running web server.

        >>> Exporter(web=":9102", telemetry_path="/m").metrics_url  # before start(): port 0
        'http://127.0.0.1:0/m'
        """
        host = parse_address(self.web_address)[0] if self.web_address else "127.0.0.1"
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{host}:{self.web_port}{self.telemetry_path}"

    def start(self) -> None:
        """Bind the statsd sockets and the web server and start serving; OSError if a bind fails.

        >>> with Exporter(udp="127.0.0.1:0", web="") as exporter:  # start() and stop()
        ...     exporter.udp_port > 0
        True
        """
        relays: list = []
        try:
            for target in self.relay_targets:
                relays.append(LineRelay(target, self.relay_packet_length))
            self.listeners.relays = self.ingest.stats.relays = relays
            self.listeners.start()
        except BaseException:
            for relay in relays:
                relay.close()
            raise
        if self.web_address:
            try:
                self._http = _HTTPServer(parse_address(self.web_address), self)
            except BaseException:
                self.listeners.stop()
                self._close_relays()
                raise
            self.web_port = self._http.server_address[1]
            self._http_thread = threading.Thread(
                target=self._http.serve_forever, name="statsd-web", daemon=True
            )
            self._http_thread.start()

    def stop(self) -> None:
        """Stop serving, close every socket; safe to call twice.

        >>> exporter = Exporter(web="")
        >>> exporter.start(); exporter.stop(); exporter.stop()
        """
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._http_thread is not None:
            self._http_thread.join(10)
            self._http_thread = None
        self.listeners.stop()
        self._close_relays()

    def _close_relays(self) -> None:
        for relay in self.listeners.relays:
            relay.close()
        self.listeners.relays = []

    def __enter__(self) -> Exporter:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_for_packets(self, count: int, timeout_s: float = 5.0) -> bool:
        """Wait until ``count`` datagrams were processed in total; True if they were (for tests).

        >>> Exporter().wait_for_packets(1, timeout_s=0.01)
        False
        """
        return self.listeners.wait_for_packets(count, timeout_s)

    def reload(self) -> bool:
        """Reload the mapping file (SIGHUP, ``/-/reload``); on failure keep the old one. True if reloaded.

        >>> import contextlib, io
        >>> with contextlib.redirect_stderr(io.StringIO()):
        ...     Exporter().reload()  # no mapping file given
        False
        """
        with self._reload_lock:
            if not self.mapping_path:
                print("statsd-instrument exporter: no mapping config to reload", file=sys.stderr)
                return False
            try:
                config = load_mapping(self.mapping_path)
            except MappingError as err:
                print(f"statsd-instrument exporter: error reloading config:\n{err}", file=sys.stderr)
                with self.ingest.lock:
                    self.ingest.stats.reloads["failure"] += 1
                return False
            self.ingest.reload(config)
            for finding in config.findings:
                print(finding.format(self.mapping_path), file=sys.stderr)
            return True
