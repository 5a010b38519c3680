"""The ``/metrics`` page: statsd series and the exporter's self-metrics in the Prometheus text format.

>>> from statsd_instrument.exporter.stats import Stats
>>> from statsd_instrument.exporter.store import Store
>>> page = render_page(Store(), Stats(), now=0.0)
>>> "# TYPE statsd_exporter_lines_total counter" in page, "statsd_exporter_lines_total 0" in page
(True, True)
"""

from __future__ import annotations

from statsd_instrument.exporter.stats import Stats
from statsd_instrument.exporter.store import Store, render_labels
from statsd_instrument.mapping.gosyntax import format_go_float

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render_page(store: Store, stats: Stats, now: float) -> str:
    """Series from ``store`` followed by every self-metric family of ``stats``.

    >>> render_page(Store(), Stats(), now=0.0).count("# TYPE ")
    21
    """
    out = [store.render(now)]
    for name, kind, help_, samples in stats.families():
        out.append(f"# HELP {name} {help_}\n# TYPE {name} {kind}\n")
        for labels, value in samples:
            text = str(value) if isinstance(value, int) else format_go_float(value)
            out.append(f"{name}{render_labels(tuple(sorted(labels.items())))} {text}\n")
    return "".join(out)
