"""``from datadog.dogstatsd import DogStatsd, statsd`` becomes
``from statsd_instrument.datadog.dogstatsd import DogStatsd, statsd``: the objects of
:mod:`statsd_instrument.datadog`.

>>> from statsd_instrument import datadog
>>> DogStatsd is datadog.DogStatsd and statsd is datadog.statsd
True
"""

from __future__ import annotations

from statsd_instrument.datadog import DogStatsd, statsd

__all__ = ["DogStatsd", "statsd"]
