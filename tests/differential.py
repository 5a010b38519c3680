"""Run the same programs once on an original library (datadog, statsd) and once on our drop-in, each into
its own embedded exporter with the shipped mapping, and compare per program what the exporters expose.

Each side's lines go through a tee (a forwarding :class:`~tests.helpers.UdpCollector`, UDP or unixgram)
that records them and forwards each datagram to that side's exporter. After a program, a marker line follows
through the same tee: once the exporter has counted the marker, it has every line of the program, and the
lines recorded between two markers are the program's. Series are compared as changes: counters, histogram
counts/sums/buckets by difference, gauges by their new value.

Deliberate differences (docs/migrating.md, "Deliberate differences") are functions here that turn the
original's lines into ours; a program names the ones it exercises, and the test asserts that each named
difference is a row of that table.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from statsd_instrument.exporter import Exporter
from statsd_instrument.mapping.gosyntax import escape_metric_name
from tests.helpers import REPO, UdpCollector, scrape

MARKER = "zz_diff_marker"
MAPPING = REPO / "exporter-mapping.yml"
#: series of the exporter itself or of datadog's client telemetry: not the programs' metrics
NOT_COMPARED = ("statsd_exporter_", "go_", "process_", "python_", "datadog_dogstatsd_client_", MARKER)


def send_line(address: Any, line: str) -> None:
    """One datagram to a UDP ``(host, port)`` or a unixgram path."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sender:
        sender.sendto(line.encode(), address)


class Side:
    """One library's path: a UDP tee, a unixgram tee and the exporter behind them; programs run in
    ``namespace`` (kept from one program to the next)."""

    def __init__(self, name: str, unix_path: str) -> None:
        self.name = name
        self.exporter = Exporter(mapping=MAPPING, udp="127.0.0.1:0", tcp="127.0.0.1:0", web="127.0.0.1:0")
        self.exporter.start()
        self.udp = UdpCollector(forward_port=self.exporter.udp_port)  # a tee: records, then forwards
        self.unix = UdpCollector(unix_path, forward_port=self.exporter.udp_port)
        self.unix_path = unix_path
        self.namespace: dict = {}
        self.marks = 0
        self.series = self._scrape()

    def _scrape(self) -> dict:
        return scrape(f"http://127.0.0.1:{self.exporter.web_port}/metrics")

    def mark(self) -> tuple[list[str], dict]:
        """(lines since the last mark, series changes since the last mark), once the exporter has all."""
        self.marks += 1
        send_line(("127.0.0.1", self.udp.port), f"{MARKER}:1|c")
        send_line(self.unix_path, f"{MARKER}:1|c")
        deadline = time.monotonic() + 10
        while True:
            series = self._scrape()
            if series.get((f"{MARKER}_total", ()), 0) >= 2 * self.marks or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert series.get((f"{MARKER}_total", ())) == 2 * self.marks, f"{self.name}: marker not counted"
        series = self._settled(series)
        lines = [ln for ln in self.udp.lines() + self.unix.lines() if not ln.startswith(MARKER)]
        self.udp.datagrams.clear()
        self.unix.datagrams.clear()
        changes = changed_series(self.series, series)
        self.series = series
        return lines, changes

    def _settled(self, series: dict, quiet_scrapes: int = 3) -> dict:
        """The series once the exporter's line count stops moving: TCP lines go straight to the exporter on
        their own connection, which the datagram markers can overtake."""
        lines = ("statsd_exporter_lines_total", ())
        deadline = time.monotonic() + 5
        quiet = 0
        while quiet < quiet_scrapes and time.monotonic() < deadline:
            time.sleep(0.02)
            again = self._scrape()
            quiet = quiet + 1 if again.get(lines) == series.get(lines) else 0
            series = again
        return series

    def close(self) -> None:
        self.udp.close()
        self.unix.close()
        self.exporter.stop()


def changed_series(before: dict, after: dict) -> dict:
    """{(sample name, labels): change} of the programs' series between two scrapes."""
    out = {}
    for key, value in after.items():
        name = key[0]
        if name.startswith(NOT_COMPARED):
            continue
        old = before.get(key)
        if name.endswith(("_total", "_count", "_sum", "_bucket")):
            if value != (old or 0):
                out[key] = value - (old or 0)
        elif old is None or old != value:
            out[key] = value
    return out


@dataclass
class Program:
    """A program, the environment it runs with (``{port}`` / ``{unix}`` are each side's tee), and the
    deliberate differences (rows of docs/migrating.md's table) its lines show."""

    source: str
    env: dict = field(default_factory=dict)
    differences: tuple = ()
    #: datadog sends ``timed`` seconds typed ms: compare those series' counts and sums (x1000), not buckets
    timer_seconds: tuple = ()

    @property
    def id(self) -> str:
        return self.source.strip().splitlines()[-1][:60]


@contextlib.contextmanager
def environment(values: dict) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run(side: Side, program: Program, source: str, index: int, flush: Callable[[dict], None]) -> tuple:
    """Run ``source`` on ``side`` (random seeded with ``index``) and return (lines, series changes)."""
    env = {k: v.format(port=side.udp.port, unix=side.unix_path) for k, v in program.env.items()}
    side.namespace.update(PORT=side.udp.port, UNIX=side.unix_path)
    with environment(env):
        random.seed(index)
        exec(compile(source, f"<{side.name} program {index}>", "exec"), side.namespace)
        flush(side.namespace)
    return side.mark()


# -- deliberate differences: the original's lines -> ours ------------------------------------------------


def _timed_unit(line: str) -> str:
    # datadog's timed: seconds typed ms; ours: the same duration in float milliseconds
    match = re.match(r"([^:]+):([0-9.e-]+)\|ms(.*)", line)
    if not match:
        return line
    ms = float(match.group(2)) * 1000
    return f"{match.group(1)}:{ms:.3f}".rstrip("0").rstrip(".") + f"|ms{match.group(3)}"


def _negative_gauge(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        name, _, rest = line.partition(":")
        if rest.startswith("-") and rest.split("|")[1] == "g":
            out.append(f"{name}:0|{rest.split('|', 1)[1]}")
        out.append(line)
    return out


DIFFERENCES: dict[str, Callable[[list[str]], list[str]]] = {
    "timed unit": lambda lines: [_timed_unit(ln) for ln in lines],
    "negative gauge": _negative_gauge,
    "sets": lambda lines: [ln for ln in lines if "|s" not in ln],
    "timestamps": lambda lines: [re.sub(r"\|T\d+", "", ln) for ln in lines],
    "cardinality": lambda lines: [re.sub(r"\|card:\w+", "", ln) for ln in lines],
    "events and service checks": lambda lines: [ln for ln in lines if not ln.startswith(("_e{", "_sc|"))],
    "client telemetry": lambda lines: [
        ln
        for ln in lines
        if not ln.startswith(("datadog.dogstatsd.client.", "statsd_instrument_client_dropped:"))
    ],
    "origin detection": lambda lines: [re.sub(r"\|(c|e):[^|]*", "", ln) for ln in lines],
}


def aggregated(lines: list[str]) -> list[str]:
    """Counter lines of one name and tag set summed, a gauge's last value kept (datadog's client-side
    aggregation); other lines as they are, in order of first appearance."""
    out: dict = {}
    for line in lines:
        name, _, rest = line.partition(":")
        value, _, fields = rest.partition("|")
        key = (name, fields) if fields.split("|")[0] in ("c", "g") else (line, len(out))
        if fields.split("|")[0] == "c" and key in out:
            out[key] = (out[key][0] + float(value), fields)
        else:
            out[key] = (float(value) if fields.split("|")[0] == "c" else value, fields)
    return [f"{key[0]}:{_number(value)}|{fields}" if len(key) == 2 and isinstance(key[1], str) else key[0]
            for key, (value, fields) in out.items()]  # fmt: skip


def _number(value: object) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def tags_sorted(lines: list[str]) -> list[str]:
    """Lines with their tags in sorted order (the exporter makes a label set of them: order is lost)."""
    out = []
    for line in lines:
        head, sep, rest = line.partition("|#")
        if sep:
            tags, bar, tail = rest.partition("|")
            line = head + sep + ",".join(sorted(tags.split(","))) + bar + tail
        out.append(line)
    return out


def _map_tags(lines: list[str], tag_map: Callable[[list[str]], list[str]]) -> list[str]:
    out = []
    for line in lines:
        head, sep, rest = line.partition("|#")
        if sep:
            tags, bar, tail = rest.partition("|")
            kept = tag_map(tags.split(","))
            line = (head + sep + ",".join(kept) if kept else head) + bar + tail
        out.append(line)
    return out


def _as_exporter_labels(tags: list[str]) -> list[str]:
    """What statsd_exporter makes of DogStatsD tags (its own key escaping, the emulation's): bare tags, empty
    values and empty keys give no label; a later key wins."""
    labels: dict = {}
    for tag in tags:
        key, sep, value = tag.partition(":")
        if sep and key and value:
            labels[escape_metric_name(key)] = value
    return [f"{key}:{value}" for key, value in labels.items()]


def _datadog_values(tags: list[str]) -> list[str]:
    r"""datadog's tag normalisation: every character outside ``[\w\d_\-:/.]`` becomes ``_``."""
    return [re.sub(r"[^\w\d_\-:/\.]", "_", tag) for tag in tags]


#: differences that are compared by bringing both sides to one form
BOTH_SIDES: dict[str, Callable[[list[str]], list[str]]] = {
    "client-side aggregation": aggregated,
    "tag values": lambda lines: _map_tags(lines, _datadog_values),
}
DIFFERENCES["tag keys"] = lambda lines: _map_tags(lines, _as_exporter_labels)


def as_ours(theirs: list[str], ours: list[str], differences: tuple) -> tuple[list[str], list[str]]:
    """(the original's lines with each named deliberate difference applied, our lines), tags sorted on
    both sides ("tag order"); a difference of :data:`BOTH_SIDES` brings both sides to one form first."""
    for name in differences:
        if name in BOTH_SIDES:
            theirs, ours = BOTH_SIDES[name](theirs), BOTH_SIDES[name](ours)
    for name in ("client telemetry", *differences):
        if name in DIFFERENCES:
            theirs = DIFFERENCES[name](theirs)
    return tags_sorted(theirs), tags_sorted(DIFFERENCES["client telemetry"](ours))


def normalised(changes: dict, timer_seconds: tuple, scale: float) -> dict:
    """Series changes with the observations of ``timer_seconds`` metrics reduced to count and scaled sum,
    without the client's own telemetry ("client telemetry")."""
    out = {}
    for (name, labels), value in changes.items():
        if name == "statsd_instrument_client_dropped_total":
            continue
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        if base in timer_seconds:
            if name.endswith("_bucket"):
                continue
            if name.endswith("_sum"):
                value = round(value * scale, 6)
        out[(name, labels)] = value
    return out


def documented_differences() -> set:
    """First cells of the rows of docs/migrating.md's "Deliberate differences" table."""
    text = (REPO / "docs" / "migrating.md").read_text()
    section = text.split("## Deliberate differences", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|") and not line.startswith("|--")]
    return {row.split("|")[1].strip().strip("*") for row in rows[1:]}


__all__ = [
    "BOTH_SIDES",
    "DIFFERENCES",
    "Program",
    "Side",
    "as_ours",
    "documented_differences",
    "normalised",
    "run",
]
