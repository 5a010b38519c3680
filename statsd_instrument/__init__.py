"""statsd_instrument: correct Prometheus metrics from multi-process Python web apps.

Every worker process pushes DogStatsD lines to a statsd_exporter sidecar, which aggregates them and which
Prometheus scrapes. This module is the public surface only.

>>> from statsd_instrument import statsd
>>> from statsd_instrument.testing import capture
>>> with capture() as cap:
...     statsd.increment("orders_total", tags=["status:paid"])
>>> cap.lines
['orders_total:1|c|#status:paid']
"""

from __future__ import annotations

from statsd_instrument.client import Client, configure, statsd
from statsd_instrument.config import ConfigError
from statsd_instrument.instrumentation import counted, instrument, timed, uninstrument
from statsd_instrument.metrics import Counter, Gauge, Histogram, Summary

__all__ = [
    "Client",
    "ConfigError",
    "Counter",
    "Gauge",
    "Histogram",
    "Summary",
    "configure",
    "counted",
    "instrument",
    "statsd",
    "timed",
    "uninstrument",
]
__version__ = "0.1.0"
