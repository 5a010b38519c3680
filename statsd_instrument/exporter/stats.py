"""The exporter's own counters, named and labelled like statsd_exporter's ``statsd_exporter_*`` metrics.

Plain integers updated under the ingestion lock: cheaper than metric objects on the hot path. ``families()``
renders them for ``/metrics``.

>>> s = Stats()
>>> s.sample_errors["malformed_line"] += 1
>>> [f for f in s.families() if f[0] == "statsd_exporter_sample_errors_total"][0][3]
[({'reason': 'malformed_line'}, 1)]
"""

from __future__ import annotations

from collections import Counter

# name, type, help, attribute, label name (None for a plain counter/gauge)
_FAMILIES = [
    ("statsd_exporter_events_total", "counter", "The total number of StatsD events seen.", "events", "type"),
    (
        "statsd_exporter_event_queue_flushed_total",
        "counter",
        "Number of times events were flushed to exporter",
        "flushes",
        None,
    ),
    (
        "statsd_exporter_events_unmapped_total",
        "counter",
        "The total number of StatsD events no mapping was found for.",
        "unmapped",
        None,
    ),
    (
        "statsd_exporter_udp_packets_total",
        "counter",
        "The total number of StatsD packets received over UDP.",
        "udp_packets",
        None,
    ),
    (
        # v0.28.0 counts UDP packets its full packet queue refused; the emulation has no such queue (its
        # listener thread parses what it reads), so this stays 0: it exists for the rules that read it
        "statsd_exporter_udp_packet_drops_total",
        "counter",
        "UDP packets dropped before parsing because the packet queue was full.",
        "udp_packet_drops",
        None,
    ),
    (
        "statsd_exporter_tcp_connections_total",
        "counter",
        "The total number of TCP connections handled.",
        "tcp_connections",
        None,
    ),
    (
        "statsd_exporter_tcp_connection_errors_total",
        "counter",
        "The number of errors encountered reading from TCP.",
        "tcp_errors",
        None,
    ),
    (
        "statsd_exporter_tcp_too_long_lines_total",
        "counter",
        "The number of lines discarded due to being too long.",
        "tcp_too_long",
        None,
    ),
    (
        "statsd_exporter_unixgram_packets_total",
        "counter",
        "The total number of StatsD packets received over Unixgram.",
        "unixgram_packets",
        None,
    ),
    ("statsd_exporter_lines_total", "counter", "The total number of StatsD lines received.", "lines", None),
    (
        "statsd_exporter_samples_total",
        "counter",
        "The total number of StatsD samples received.",
        "samples",
        None,
    ),
    (
        "statsd_exporter_sample_errors_total",
        "counter",
        "The total number of errors parsing StatsD samples.",
        "sample_errors",
        "reason",
    ),
    ("statsd_exporter_tags_total", "counter", "The total number of DogStatsD tags processed.", "tags", None),
    (
        "statsd_exporter_tag_errors_total",
        "counter",
        "The number of errors parsing DogStatsD tags.",
        "tag_errors",
        None,
    ),
    (
        "statsd_exporter_config_reloads_total",
        "counter",
        "The number of configuration reloads.",
        "reloads",
        "outcome",
    ),
    (
        "statsd_exporter_loaded_mappings",
        "gauge",
        "The current number of configured metric mappings.",
        "loaded_mappings",
        None,
    ),
    (
        "statsd_exporter_events_conflict_total",
        "counter",
        "The total number of StatsD events with conflicting names.",
        "conflicts",
        "type",
    ),
    (
        "statsd_exporter_events_error_total",
        "counter",
        "The total number of StatsD events discarded due to errors.",
        "event_errors",
        "reason",
    ),
    (
        "statsd_exporter_events_actions_total",
        "counter",
        "The total number of StatsD events by action.",
        "actions",
        "action",
    ),
    ("statsd_exporter_metrics_total", "gauge", "The total number of metrics.", "metrics", "type"),
]

# rendered only when --statsd.relay.address is given, one sample per target, as the Go exporter does
_RELAY_FAMILIES = [
    ("statsd_exporter_relay_packets_total", "The number of StatsD packets relayed.", "packets"),
    ("statsd_exporter_relay_long_lines_total", "The number lines that were too long to relay.", "long_lines"),
    (
        "statsd_exporter_relay_lines_relayed_total",
        "The number of lines that were buffered to be relayed.",
        "lines",
    ),
]


class Stats:
    """Every self-metric as a plain attribute: ints, or ``Counter`` keyed by the label value.

    >>> Stats().lines, dict(Stats().events)
    (0, {})
    """

    def __init__(self) -> None:
        self.events: Counter = Counter()
        self.flushes = 0
        self.unmapped = 0
        self.udp_packets = 0
        self.udp_packet_drops = 0  # see _FAMILIES: never moves here
        self.tcp_connections = 0
        self.tcp_errors = 0
        self.tcp_too_long = 0
        self.unixgram_packets = 0
        self.lines = 0
        self.samples = 0
        self.sample_errors: Counter = Counter()
        self.tags = 0
        self.tag_errors = 0
        self.reloads: Counter = Counter()
        self.loaded_mappings = 0
        self.conflicts: Counter = Counter()
        self.event_errors: Counter = Counter()
        self.actions: Counter = Counter()
        self.metrics: Counter = Counter()
        # LineRelay objects of --statsd.relay.address (their counters are ints the listener thread updates)
        self.relays: list = []

    def families(self) -> list:
        """``(name, type, help, [(labels, value), ...])`` for each self-metric, as in the Go exporter.

        >>> Stats().families()[0][:2]
        ('statsd_exporter_events_total', 'counter')
        """
        out = []
        for name, kind, help_, attribute, label in _FAMILIES:
            value = getattr(self, attribute)
            samples: list[tuple[dict[str, str], int]]
            if label is None:
                samples = [({}, value)]
            else:
                samples = [({label: key}, count) for key, count in sorted(value.items())]
            out.append((name, kind, help_, samples))
        for name, help_, attribute in _RELAY_FAMILIES if self.relays else ():
            samples = [({"target": relay.target}, getattr(relay, attribute)) for relay in self.relays]
            out.append((name, "counter", help_, samples))
        out.append(
            (
                "statsd_exporter_build_info",
                "gauge",
                "A metric with a constant '1' value labeled by version, revision, branch, and goversion from "
                "which statsd_exporter was built.",
                [({"version": "statsd_instrument", "revision": "", "branch": "", "goversion": "python"}, 1)],
            )
        )
        return out
