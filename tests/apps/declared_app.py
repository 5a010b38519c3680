"""A WSGI app whose metrics are all declared (statsd_instrument.metrics); it flushes at the end of a request.

``GET /<status>?step=<step>&ms=<milliseconds>`` counts one order of ``<status>`` and observes ``<ms>`` in the
checkout histogram of ``<step>``. ``refunded`` orders are never requested by the tests: that series exists
only through the zero start.
"""

from __future__ import annotations

import urllib.parse

from statsd_instrument import Counter, Histogram, statsd

ORDERS = Counter("e2e_orders_total", "Orders by status.", tags={"status": ("paid", "failed", "refunded")})
CHECKOUT = Histogram(
    "e2e_checkout_seconds", "Checkout time by step.", tags=("step",), buckets=(0.005, 0.05, 0.5)
)


def application(environ, start_response):
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    ORDERS.increment(status=environ.get("PATH_INFO", "/").strip("/"))
    CHECKOUT.observe(float(query["ms"][0]) / 1000.0, step=query["step"][0])
    statsd.flush()  # as the integrations do: the request's lines leave when it ends
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
