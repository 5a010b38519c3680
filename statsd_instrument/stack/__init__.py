"""Running the whole stack natively (no Docker): the pieces ``statsd-instrument demo`` is built from.

- :mod:`~statsd_instrument.stack.files`: find the shipped files (mapping, example app, prometheus.yml).
- :mod:`~statsd_instrument.stack.ports`: check ports before starting anything.
- :mod:`~statsd_instrument.stack.processes`: child processes in their own process group, stopped by pid.
- :mod:`~statsd_instrument.stack.prometheus`: a native Prometheus config derived from the shipped one, and
  a small client for its HTTP API.
- :mod:`~statsd_instrument.stack.traffic`: a bounded-rate traffic generator with a realistic mix.
"""

from __future__ import annotations
