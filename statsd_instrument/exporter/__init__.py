"""A statsd_exporter emulation: line parser, mapping, series store, listeners and ``/metrics``.

Run it in-process with ``Exporter`` (tests, the native demo) or as ``statsd-instrument exporter`` with
statsd_exporter's flags.

>>> with Exporter(udp="127.0.0.1:0", web="127.0.0.1:0") as exporter:
...     exporter.udp_port > 0 and exporter.web_port > 0
True
"""

from __future__ import annotations

from statsd_instrument.exporter.ingest import Ingestor
from statsd_instrument.exporter.lineparser import Event, ParserFlags, parse_line
from statsd_instrument.exporter.server import Exporter

__all__ = ["Event", "Exporter", "Ingestor", "ParserFlags", "parse_line"]
