"""Guard rails for names that break the real statsd_exporter: its own families, type conflicts, collisions.

Checked once per metric name and type (the client caches what passed), three classes of name are refused
(strict mode raises; production drops, counts and logs once), each with a :class:`GuardError` ``reason``:

* ``reserved_name``: the Prometheus name the statsd name gets (under the shipped ``exporter-mapping.yml``,
  or escaped when no rule matches) is, or writes a sample of, a family the exporter exposes itself
  (:data:`EXPORTER_OWN_FAMILIES`). The Go exporter keeps serving such a name and every later scrape of it
  fails, for every app behind that sidecar, until it restarts;
* ``type_conflict``: the name was already sent with another type in this process (the exporter keeps the
  first type and drops the other);
* ``series_collision``: one of its samples is already written by another family, e.g. a counter
  ``latency_count`` next to a histogram ``latency`` (``latency_count``, ``latency_sum``, ``latency_bucket``).

What the shipped mapping does is kept here as data (:data:`SHIPPED_RULES`), so the client needs no YAML
parser; ``tests/test_guard.py`` regenerates it from the file and fails when the two differ.

>>> prometheus_name("shop.process_cpu_seconds.count", "c")
'process_cpu_seconds_total'
>>> check_series("go.goroutines", "g", SentSeries())
Traceback (most recent call last):
...
statsd_instrument.guard.GuardError: 'go.goroutines' is exported as go_goroutines, a metric the exporter ...
>>> sent = SentSeries()
>>> check_series("jobs", "c", sent); check_series("jobs", "ms", sent)
Traceback (most recent call last):
...
statsd_instrument.guard.GuardError: 'jobs' (jobs, histogram) was already sent as a counter in this process...
"""

from __future__ import annotations

import re
from typing import Dict, Tuple

from statsd_instrument.validation import label_name

# The metric families statsd_exporter serves on its own /metrics besides the statsd ones, with their types.
# Read from the sources of statsd_exporter v0.20.1 to v0.30.0 (main.go, pkg/mapper/mapper_cache.go,
# pkg/mappercache/metrics.go, pkg/relay/relay.go, the version collector's <program>_build_info) and of
# prometheus/client_golang v1.9.0 to v1.23.2, the versions those releases pin in go.mod (default Go and
# process collectors, promhttp.Handler). go_memstats_lookups_total and go_memstats_gc_cpu_fraction come from
# builds with Go 1.16 or older; go_gc_gogc_percent, go_gc_gomemlimit_bytes, go_sched_gomaxprocs_threads and
# process_network_*_bytes_total from client_golang 1.20 on; statsd_exporter_udp_packet_drops_total from
# statsd_exporter 0.24 on; the relay families with --statsd.relay.address (0.22 on).
EXPORTER_OWN_FAMILIES: Dict[str, str] = {
    **dict.fromkeys(
        [
            "statsd_exporter_config_reloads_total",
            "statsd_exporter_event_queue_flushed_total",
            "statsd_exporter_events_actions_total",
            "statsd_exporter_events_conflict_total",
            "statsd_exporter_events_error_total",
            "statsd_exporter_events_total",
            "statsd_exporter_events_unmapped_total",
            "statsd_exporter_lines_total",
            "statsd_exporter_relay_lines_relayed_total",
            "statsd_exporter_relay_long_lines_total",
            "statsd_exporter_relay_packets_total",
            "statsd_exporter_sample_errors_total",
            "statsd_exporter_samples_total",
            "statsd_exporter_tag_errors_total",
            "statsd_exporter_tags_total",
            "statsd_exporter_tcp_connection_errors_total",
            "statsd_exporter_tcp_connections_total",
            "statsd_exporter_tcp_too_long_lines_total",
            "statsd_exporter_udp_packet_drops_total",
            "statsd_exporter_udp_packets_total",
            "statsd_exporter_unixgram_packets_total",
            "statsd_metric_mapper_cache_gets_total",
            "statsd_metric_mapper_cache_hits_total",
            "go_memstats_alloc_bytes_total",
            "go_memstats_frees_total",
            "go_memstats_lookups_total",
            "go_memstats_mallocs_total",
            "process_cpu_seconds_total",
            "process_network_receive_bytes_total",
            "process_network_transmit_bytes_total",
            "promhttp_metric_handler_errors_total",
            "promhttp_metric_handler_requests_total",
        ],
        "counter",
    ),
    **dict.fromkeys(
        [
            "statsd_exporter_build_info",
            "statsd_exporter_loaded_mappings",
            "statsd_exporter_metrics_total",
            "statsd_metric_mapper_cache_length",
            "go_gc_gogc_percent",
            "go_gc_gomemlimit_bytes",
            "go_goroutines",
            "go_info",
            "go_memstats_alloc_bytes",
            "go_memstats_buck_hash_sys_bytes",
            "go_memstats_gc_cpu_fraction",
            "go_memstats_gc_sys_bytes",
            "go_memstats_heap_alloc_bytes",
            "go_memstats_heap_idle_bytes",
            "go_memstats_heap_inuse_bytes",
            "go_memstats_heap_objects",
            "go_memstats_heap_released_bytes",
            "go_memstats_heap_sys_bytes",
            "go_memstats_last_gc_time_seconds",
            "go_memstats_mcache_inuse_bytes",
            "go_memstats_mcache_sys_bytes",
            "go_memstats_mspan_inuse_bytes",
            "go_memstats_mspan_sys_bytes",
            "go_memstats_next_gc_bytes",
            "go_memstats_other_sys_bytes",
            "go_memstats_stack_inuse_bytes",
            "go_memstats_stack_sys_bytes",
            "go_memstats_sys_bytes",
            "go_sched_gomaxprocs_threads",
            "go_threads",
            "process_max_fds",
            "process_open_fds",
            "process_resident_memory_bytes",
            "process_start_time_seconds",
            "process_virtual_memory_bytes",
            "process_virtual_memory_max_bytes",
            "promhttp_metric_handler_requests_in_flight",
        ],
        "gauge",
    ),
    "go_gc_duration_seconds": "summary",
}

# exporter-mapping.yml as prometheus_name() needs it, in the exporter's order (every glob rule before any
# regex rule): (match_type, match, match_metric_type, name template, observer_type). Regenerated and compared
# by tests/test_guard.py; glob rules must be literal names, templates use ${n} references only.
SHIPPED_RULES: Tuple[Tuple[str, str, str, str, str], ...] = (
    ("glob", "request_count", "counter", "http_requests_total", "histogram"),
    ("glob", "request_latency_seconds", "observer", "http_request_duration_seconds", "histogram"),
    ("glob", "request_exceptions", "counter", "http_request_exceptions_total", "histogram"),
    ("glob", "request_in_flight", "gauge", "http_requests_in_flight", "histogram"),
    ("glob", "app_info", "gauge", "app_info", "histogram"),
    (
        "glob",
        "statsd_instrument_client_dropped",
        "counter",
        "statsd_instrument_client_dropped_total",
        "histogram",
    ),
    (
        "regex",
        r"^([^.]+)\.([^.]+)\.(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)\.([1-5][0-9][0-9])$",
        "counter",
        "http_requests_total",
        "histogram",
    ),
    (
        "regex",
        r"^([^.]+)\.([^.]+)\.(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)\.([1-5][0-9][0-9])$",
        "observer",
        "http_request_duration_seconds",
        "histogram",
    ),
    ("regex", r"^([^.]+)\.([a-zA-Z_][a-zA-Z0-9_]*)\.count$", "counter", "${2}_total", "histogram"),
    (
        "regex",
        r"^([^.]+)\.([a-zA-Z_][a-zA-Z0-9_]*)\.(time|timer|duration)$",
        "observer",
        "${2}_duration_seconds",
        "histogram",
    ),
)
#: ``defaults.observer_type`` of the shipped mapping (what a timer or histogram without a rule becomes).
SHIPPED_DEFAULT_OBSERVER = "histogram"

#: The statsd event type of each client metric kind.
EVENT_TYPES = {"c": "counter", "g": "gauge", "ms": "observer", "h": "observer", "d": "observer"}
#: At most this many families are remembered per process; names beyond it are not checked for conflicts.
MAX_SENT_FAMILIES = 10_000

_REFERENCE = re.compile(r"\$\{(\d+)\}")
_compiled: list = []


class GuardError(ValueError):
    """A name refused by the guard rails; ``reason`` is reserved_name, type_conflict or series_collision."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def family_samples(name: str, kind: str) -> Tuple[str, ...]:
    """Every sample name a family of ``kind`` writes.

    >>> family_samples("t", "histogram")
    ('t', 't_bucket', 't_sum', 't_count')
    """
    if kind == "histogram":
        return (name, name + "_bucket", name + "_sum", name + "_count")
    if kind == "summary":
        return (name, name + "_sum", name + "_count")
    return (name,)


#: Every sample name of the exporter's own families, mapped to its family.
EXPORTER_OWN_SAMPLES: Dict[str, str] = {
    sample: family
    for family, kind in EXPORTER_OWN_FAMILIES.items()
    for sample in family_samples(family, kind)
}


def escape_name(name: str) -> str:
    """The exporter's escaping of an unmapped statsd name (``.``, ``-``... become ``_``; ``--`` one ``_``):
    the rule of tag keys, :func:`statsd_instrument.validation.label_name`, for a name that passed
    :func:`~statsd_instrument.validation.check_name`.

    >>> escape_name("go.goroutines"), escape_name("a--b"), escape_name("2xx")
    ('go_goroutines', 'a_b', '_2xx')
    """
    return label_name(name)


def _rules() -> list:
    if not _compiled:
        _compiled.extend(
            (re.compile(match) if match_type == "regex" else match, metric_type, template, observer)
            for match_type, match, metric_type, template, observer in SHIPPED_RULES
        )
    return _compiled


def resolve(statsd_name: str, kind: str) -> Tuple[str, str]:
    """``(Prometheus name, Prometheus type)`` the shipped mapping gives ``statsd_name`` sent as ``kind``.

    >>> resolve("request_latency_seconds", "ms"), resolve("db.query-time", "ms")
    (('http_request_duration_seconds', 'histogram'), ('db_query_time', 'histogram'))
    """
    event_type = EVENT_TYPES[kind]
    for pattern, metric_type, template, observer in _rules():
        if metric_type and metric_type != event_type:
            continue
        if isinstance(pattern, str):
            if pattern != statsd_name:
                continue
            name = template
        else:
            found = pattern.search(statsd_name)
            if found is None:
                continue
            groups = (found.group(0), *found.groups())
            name = _REFERENCE.sub(lambda ref: groups[int(ref.group(1))] or "", template)  # noqa: B023
        return escape_name(name), observer if event_type == "observer" else event_type
    return escape_name(statsd_name), SHIPPED_DEFAULT_OBSERVER if event_type == "observer" else event_type


def prometheus_name(statsd_name: str, kind: str) -> str:
    """The Prometheus name the shipped mapping gives ``statsd_name`` sent as ``kind`` (``c g ms h d``).

    >>> prometheus_name("request_count", "c"), prometheus_name("shop.report.time", "ms")
    ('http_requests_total', 'report_duration_seconds')
    """
    return resolve(statsd_name, kind)[0]


def reserved_family(name: str, prom_kind: str) -> str | None:
    """The exporter's own family that a family ``name`` of ``prom_kind`` would collide with, or None.

    >>> reserved_family("go_gc_duration_seconds_count", "counter"), reserved_family("orders", "counter")
    ('go_gc_duration_seconds', None)
    """
    for sample in family_samples(name, prom_kind):
        family = EXPORTER_OWN_SAMPLES.get(sample)
        if family is not None:
            return family
    return None


class SentSeries:
    """The families sent in this process: which family writes each sample name, and of what type.

    >>> s = SentSeries(); s.claim("t", "histogram"); s.claim("t_count", "counter")
    'histogram t'
    """

    def __init__(self) -> None:
        self.owners: Dict[str, Tuple[str, str]] = {}  # sample name -> (family, type)
        self.families = 0

    def claim(self, family: str, prom_kind: str) -> str | None:
        """Record ``family``; None if it fits, else ``"<type> <family>"`` of the family it conflicts with."""
        samples = family_samples(family, prom_kind)
        for sample in samples:
            owner = self.owners.get(sample)
            if owner is not None and owner != (family, prom_kind):
                return f"{owner[1]} {owner[0]}"
        if self.families < MAX_SENT_FAMILIES and family not in self.owners:
            self.families += 1
            for sample in samples:
                self.owners[sample] = (family, prom_kind)
        return None


def check_series(statsd_name: str, kind: str, sent: SentSeries) -> None:
    """Raise :class:`GuardError` if ``statsd_name`` sent as ``kind`` would break the exporter (module doc),
    else record it in ``sent``.

    >>> check_series("shop.statsd_exporter_lines.count", "c", SentSeries())
    Traceback (most recent call last):
    ...
    statsd_instrument.guard.GuardError: 'shop.statsd_exporter_lines.count' is exported as ...
    """
    name, prom_kind = resolve(statsd_name, kind)
    own = reserved_family(name, prom_kind)
    if own is not None:
        raise GuardError(
            "reserved_name",
            f"{statsd_name!r} is exported as {name}, a metric the exporter serves itself ({own}): every "
            "later scrape of a real statsd_exporter would fail; choose another name",
        )
    other = sent.claim(name, prom_kind)
    if other is None:
        return
    other_kind, other_name = other.split(" ", 1)
    if other_name == name:
        raise GuardError(
            "type_conflict",
            f"{statsd_name!r} ({name}, {prom_kind}) was already sent as a {other_kind} in this process; the "
            "exporter keeps the first type and drops the other: one type per name",
        )
    raise GuardError(
        "series_collision",
        f"{statsd_name!r} ({name}, {prom_kind}) writes a series that the {other_kind} {other_name} already "
        "writes (its _sum/_count/_bucket): the exporter would refuse one of them; rename one",
    )
