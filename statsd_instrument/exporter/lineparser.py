"""statsd_exporter v0.28.0's line parser: ``name:value|type[|@rate][|#tags]`` into events.

Follows the Go exporter's ``pkg/line`` at the version the compose file pins (v0.28.0): DogStatsD, InfluxDB
(``name,k=v``), Librato (``name#k=v``) and SignalFX (``name[k=v]``) tags; sample rates (counters divided,
timers repeated, gauges ignored); gauge deltas (a leading ``+``/``-``); ``ms`` divided by 1000; multi-value
lines (``name:1:2:3|ms``) and the older ``name:1|c:2|g`` form; at most 4 ``|`` fields; any other field
(DogStatsD's ``|c:<container id>``, ``|T<timestamp>``, ``|e:...``) counts an ``invalid_sample_factor`` and
is ignored, the sample kept (newer releases drop it or turn ``c:`` into a label); the sample and tag error
counters with the same reasons. One difference: a ``]`` before ``[`` in a name (which panics the Go
exporter) counts a tag error and leaves the name as it is.

>>> from statsd_instrument.exporter.stats import Stats
>>> stats = Stats()
>>> parse_line("lat:250|ms|@0.5|#route:/a", ParserFlags(), stats)
[Event(name='lat', metric_type='observer', value=0.25, relative=False, labels={'route': '/a'}, weight=2)]
>>> parse_line("g:-3|g", ParserFlags(), stats)[0].relative, parse_line("x", ParserFlags(), stats)
(True, [])
>>> dict(stats.sample_errors)
{'malformed_line': 1}
"""

from __future__ import annotations

import dataclasses
import math

from statsd_instrument.exporter.stats import Stats
from statsd_instrument.mapping.gosyntax import escape_metric_name, parse_go_float, parse_go_float_result

_TYPES = {"c": "counter", "g": "gauge", "ms": "observer", "h": "observer", "d": "observer"}


@dataclasses.dataclass(frozen=True)
class ParserFlags:
    """Which tag formats to parse (statsd_exporter's ``--statsd.parse-*-tags``, all on by default).

    >>> ParserFlags(influxdb=False).influxdb, DEFAULT_FLAGS.influxdb
    (False, True)
    """

    dogstatsd: bool = True
    influxdb: bool = True
    librato: bool = True
    signalfx: bool = True


#: Every tag format on, statsd_exporter's default.
DEFAULT_FLAGS = ParserFlags()


@dataclasses.dataclass
class Event:
    """One parsed sample: ``weight`` > 1 when a sample rate stands for several observations.

    >>> Event("t", "observer", 0.5, False, {}, weight=2).weight
    2
    """

    name: str
    metric_type: str
    value: float
    relative: bool
    labels: dict
    weight: int = 1


def _parse_tag(tag: str, separator: str, labels: dict, stats: Stats) -> None:
    if not tag:
        stats.tag_errors += 1
        return
    key, found, value = tag.partition(separator)
    if not found or not key or not value:
        stats.tag_errors += 1
        return
    labels[escape_metric_name(key)] = value


def _parse_name_tags(component: str, labels: dict, stats: Stats) -> None:
    parts = component.split(",")
    if parts and parts[-1] == "":
        parts.pop()  # a trailing separator adds no empty tag
    for tag in parts:
        _parse_tag(tag, "=", labels, stats)


def _parse_dogstatsd_tags(component: str, labels: dict, stats: Stats) -> None:
    parts = component.split(",")
    if parts and parts[-1] == "":
        parts.pop()
    for tag in parts:
        _parse_tag(tag[1:] if tag.startswith("#") else tag, ":", labels, stats)


def _name_and_tags(name: str, flags: ParserFlags, labels: dict, stats: Stats) -> str:
    if flags.signalfx:
        start, end = name.find("["), name.find("]")
        if start >= 0 and end >= 0:
            if end < start:  # the Go exporter slices name[start+1:end] here and panics
                stats.tag_errors += 1
                return name
            _parse_name_tags(name[start + 1 : end], labels, stats)
            return name[:start] + name[end + 1 :]
        if (start >= 0) != (end >= 0):
            stats.tag_errors += 1
            return name
    for i, char in enumerate(name):
        if (char == "#" and flags.librato) or (char == "," and flags.influxdb):
            _parse_name_tags(name[i + 1 :], labels, stats)
            return name[:i]
    return name


def _repeat_count(rate: float) -> int:
    """Go's ``int(1 / rate)``: truncation; NaN, infinite or out-of-range results give no observation."""
    inverse = 1 / rate
    if math.isnan(inverse) or math.isinf(inverse) or abs(inverse) >= 2**63:
        return 0
    return max(int(inverse), 0)


def parse_line(line: str, flags: ParserFlags, stats: Stats) -> list:
    """The events of one statsd line; errors are counted in ``stats`` like statsd_exporter counts them.

    >>> [e.value for e in parse_line("t:1:2|d", DEFAULT_FLAGS, Stats())]
    [1.0, 2.0]
    """
    if not line:
        return []
    name_part, colon, rest = line.partition(":")
    if not colon or not name_part:
        stats.sample_errors["malformed_line"] += 1
        return []
    labels: dict = {}
    metric = _name_and_tags(name_part, flags, labels, stats)
    dogstatsd = "|#" in rest
    if dogstatsd and labels:
        stats.sample_errors["mixed_tagging_styles"] += 1
        return []
    parts = rest.split("|", 2)
    if len(parts) < 2:
        stats.sample_errors["not_enough_parts_after_colon"] += 1
        return []
    if ":" in parts[0]:
        if parts[1] not in ("ms", "h", "d"):
            stats.sample_errors["invalid_extended_aggregate_type"] += 1
            return []
        suffix = rest.partition("|")[2]
        samples = [f"{value}|{suffix}" for value in parts[0].split(":")]
    elif dogstatsd:
        samples = [rest]
    else:
        samples = rest.split(":")
    events = []
    for sample in samples:
        event = _parse_sample(sample, metric, labels, flags, stats)
        if event is not None:
            events.append(event)
    return events


def _parse_sample(sample: str, metric: str, labels: dict, flags: ParserFlags, stats: Stats):
    stats.samples += 1
    components = sample.split("|")
    if len(components) < 2 or len(components) > 4:
        stats.sample_errors["malformed_component"] += 1
        return None
    value_text, stat_type = components[0], components[1]
    relative = value_text[:1] in ("+", "-")
    value = parse_go_float(value_text)
    if value is None:
        stats.sample_errors["malformed_value"] += 1
        return None
    weight = 1
    extras = components[2:]
    if any(not c for c in extras):
        stats.sample_errors["malformed_component"] += 1
        return None
    for component in extras:
        first = component[0]
        if first == "@":
            # Go goes on with ParseFloat's value after an error: 0 (read as 1) or +-Inf out of range
            rate, ok = parse_go_float_result(component[1:])
            if not ok:
                stats.sample_errors["invalid_sample_factor"] += 1
            if rate == 0:
                rate = 1.0
            if stat_type == "c":
                value /= rate
            elif stat_type in ("ms", "h", "d"):
                weight = _repeat_count(rate)
        elif first == "#":
            if flags.dogstatsd:
                _parse_dogstatsd_tags(component[1:], labels, stats)
        else:  # v0.28.0 counts any other field and keeps the sample
            stats.sample_errors["invalid_sample_factor"] += 1
    if labels:
        stats.tags += 1
    if weight <= 0:
        return None
    metric_type = _TYPES.get(stat_type)
    if metric_type is None:
        stats.sample_errors["illegal_event"] += weight
        return None
    if stat_type == "ms":
        value /= 1000.0
    return Event(metric, metric_type, value, relative, dict(labels), weight)
