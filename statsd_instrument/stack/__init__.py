"""Running the whole stack natively (no Docker): the pieces ``statsd-instrument demo`` is built from.

- :mod:`~statsd_instrument.stack.files`: find the shipped files (mapping, example app, prometheus.yml).
- :mod:`~statsd_instrument.stack.ports`: check ports before starting anything.
- :mod:`~statsd_instrument.stack.processes`: child processes in their own process group, stopped by pid.
- :mod:`~statsd_instrument.stack.prometheus`: a native Prometheus config derived from the shipped one, and
  a small client for its HTTP API.
- :mod:`~statsd_instrument.stack.alertmanager`: a native Alertmanager config derived from the shipped one
  (same routing, every receiver a local webhook), and what the demo says about deliveries.
- :mod:`~statsd_instrument.stack.alert_receiver`: the webhook receiver Alertmanager delivers to (stdlib
  only: the compose bundle runs the same file).
- :mod:`~statsd_instrument.stack.traffic`: a bounded-rate traffic generator with a realistic mix.
"""

from __future__ import annotations
