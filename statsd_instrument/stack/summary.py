"""The demo's live summary line: requests, error ratio and p99, from Prometheus or else from the exporter.

From Prometheus the error ratio and p99 are over the last minute (PromQL over the scraped series); from the
exporter alone (no Prometheus) they are since the start, computed from the exposed counters and buckets.
"""

from __future__ import annotations

import math
import urllib.request
from dataclasses import dataclass, field
from typing import Iterable

from prometheus_client.parser import text_string_to_metric_families

from statsd_instrument.stack.prometheus import PrometheusAPI, PromQLError

REQUESTS = "http_requests_total"
BUCKETS = "http_request_duration_seconds_bucket"

#: PromQL behind each figure of the summary (also what a user can paste into the Prometheus UI)
QUERIES = {
    "requests": f"sum({REQUESTS})",
    # irate: the last two scrapes, so the figure is right from the second scrape on (rate[1m] under-reads
    # while Prometheus has less than a minute of data)
    "rate": f"sum(irate({REQUESTS}[30s]))",
    "error_ratio": (
        f'(sum(rate({REQUESTS}{{status=~"5.."}}[1m])) or 0 * sum(rate({REQUESTS}[1m])))'
        f" / sum(rate({REQUESTS}[1m]))"
    ),
    "p99": f"histogram_quantile(0.99, sum by (le) (rate({BUCKETS}[1m])))",
}


@dataclass
class Summary:
    """One reading of the stack.

    >>> print(Summary("Prometheus, last 1m", 1200, 0.081, 0.0123, 48.5, ["HTTPLatencyP99High"]).line())
    [Prometheus, last 1m] requests 1200 | 48.5 req/s | errors 8.1% | p99 12.3 ms | firing: HTTPLatencyP99High
    """

    source: str
    requests: float | None = None
    error_ratio: float | None = None
    p99_s: float | None = None
    rate_per_s: float | None = None
    firing: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"[{self.source}] requests {_fmt(self.requests, '{:.0f}')}"]
        if self.rate_per_s is not None:
            parts.append(f"{self.rate_per_s:.1f} req/s")
        parts.append(f"errors {_fmt(self.error_ratio, '{:.1%}')}")
        parts.append(f"p99 {_fmt(None if self.p99_s is None else self.p99_s * 1000, '{:.1f} ms')}")
        if self.firing:
            parts.append("firing: " + ", ".join(self.firing))
        return " | ".join(parts)


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None or math.isnan(value) else spec.format(value)


def from_prometheus(
    api: PrometheusAPI,
    source: str = "Prometheus",
    requests_query: str = QUERIES["requests"],
    alerts_api: PrometheusAPI | None = None,
) -> Summary:
    """Read the summary from Prometheus, or any store with its query API (figures without data stay None).

    ``requests_query`` replaces the requests figure's query (the multi-pod demo sums ``increase()`` so a
    pod that is gone still counts); ``alerts_api`` is where firing alerts are read, if not ``api``.
    """
    summary = Summary(f"{source}, last 1m")
    try:
        summary.requests = api.scalar(requests_query)
        summary.rate_per_s = api.scalar(QUERIES["rate"])
        summary.error_ratio = api.scalar(QUERIES["error_ratio"])
        summary.p99_s = api.scalar(QUERIES["p99"])
        summary.firing = sorted({a["labels"]["alertname"] for a in (alerts_api or api).firing_alerts()})
    except PromQLError as err:
        summary.source = f"{source} unreachable: {err}"
    return summary


def quantile_from_buckets(buckets: Iterable[tuple[float, float]], q: float) -> float | None:
    """Quantile from cumulative (upper bound, count) buckets, interpolated as histogram_quantile does.

    >>> quantile_from_buckets([(0.005, 30), (0.01, 50), (0.025, 60), (math.inf, 60)], 0.9)
    0.016
    """
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in ordered:
        if count >= rank:
            if math.isinf(upper):
                return lower  # like Prometheus: the highest finite bound
            return round(lower + (upper - lower) * (rank - below) / (count - below), 12)
        lower, below = upper, count
    return None


def from_exporter(metrics_url: str) -> Summary:
    """Read the summary from the exporter's /metrics (totals since the exporter started)."""
    summary = Summary("exporter, since start")
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as resp:
            text = resp.read().decode()
    except OSError as err:
        summary.source = f"exporter unreachable: {err}"
        return summary
    total = errors = 0.0
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == REQUESTS:
                total += sample.value
                errors += sample.value if sample.labels.get("status", "").startswith("5") else 0
            elif sample.name == BUCKETS:
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    summary.requests = total
    summary.error_ratio = errors / total if total else None
    summary.p99_s = quantile_from_buckets(buckets.items(), 0.99)
    return summary
