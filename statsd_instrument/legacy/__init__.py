"""Drop-in replacement for the ``statsd`` package (pystatsd 4.x): change the import, keep the code.

``import statsd`` becomes ``import statsd_instrument.legacy as statsd`` (or ``from statsd import
StatsClient`` becomes ``from statsd_instrument.legacy import StatsClient``; ``statsd.defaults.env`` becomes
``statsd_instrument.legacy.defaults.env``). The lines on the wire are the original's; the shipped
``exporter-mapping.yml`` turns the usual dotted names into labelled Prometheus series.

>>> import statsd_instrument.legacy as statsd
>>> client = statsd.StatsClient("127.0.0.1", 8125, prefix="myapp")
>>> pipe = client.pipeline()  # collects lines until pipe.send()
>>> pipe.incr("checkout.GET.200")
>>> pipe.timing("checkout.GET.200", 12.5)
>>> list(pipe._stats)
['myapp.checkout.GET.200:1|c', 'myapp.checkout.GET.200:12.500000|ms']
"""

from __future__ import annotations

from statsd_instrument.legacy.client import Pipeline, StatsClient, TCPStatsClient, UnixSocketStatsClient
from statsd_instrument.legacy.timer import Timer

__all__ = ["Pipeline", "StatsClient", "TCPStatsClient", "Timer", "UnixSocketStatsClient"]
