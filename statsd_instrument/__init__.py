"""statsd_instrument: correct Prometheus metrics from multi-process Python web apps.

Every worker process pushes DogStatsD lines to a statsd_exporter sidecar, which aggregates them and which
Prometheus scrapes. This module is the public surface only.

>>> from statsd_instrument import statsd
>>> statsd.increment("orders_total", tags=["status:paid"])
"""

from __future__ import annotations

from statsd_instrument.client import Client, statsd

__all__ = ["Client", "statsd"]
__version__ = "0.1.0"
