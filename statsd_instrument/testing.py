"""Test helpers and the pytest plugin (registered through the ``pytest11`` entry point).

``capture()`` puts a client (default: the module-level ``statsd``) in test mode for a block: nothing is sent
to the network, bad calls raise, and every line emitted is kept and parsed into :class:`Record` objects.
Assertion helpers print every record captured when they fail. The ``statsd_capture`` fixture does the same
for one test.

>>> from statsd_instrument import statsd
>>> with capture() as cap:
...     statsd.increment("orders_total", tags={"status": "paid"})
...     statsd.timing("db_query_seconds", 12.5)
>>> cap.records[0]
Record(name='orders_total', type='c', value=1.0, tags={'status': 'paid'}, sample_rate=1.0)
>>> _ = cap.assert_emitted("orders_total", type="c", tags={"status": "paid"})
>>> cap.assert_emitted("db_query_seconds", value=12.5).type
'ms'
>>> cap.assert_consistent()

``assert_consistent()`` is the check a project runs once in its own suite, after exercising its code paths:
one type per name (and no name that collides with another's ``_sum``/``_count``/``_bucket`` or with the
exporter's own metrics, as :mod:`statsd_instrument.guard` judges them), and **bounded** tag values. A tag is
bounded when, for each metric and tag key, the capture holds at most ``max_values`` distinct values (default
50) and none of them carries an identifier: a run of 6 or more digits (ids, timestamps), a UUID, or 16 or
more hexadecimal characters in a row (hashes, tokens). Each such value would become a new Prometheus series.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, Iterator, List, NamedTuple

from statsd_instrument import guard
from statsd_instrument.metrics import Metric

try:
    import pytest
except ImportError:  # pragma: no cover - capture() works without pytest; only the fixture needs it
    pytest = None  # type: ignore[assignment]


#: Tag values that carry an identifier (see the module docstring): unbounded by nature.
IDENTIFIER_VALUE = re.compile(
    r"[0-9]{6}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16}"
)
#: Kinds of the records ``assert_consistent`` judges (sets are refused by the client anyway).
_GUARDED_KINDS = frozenset(guard.EVENT_TYPES)


class Record(NamedTuple):
    """One metric event parsed from a line (a negative gauge that is set gives two: 0, then the value)."""

    name: str
    type: str
    value: float
    tags: dict
    sample_rate: float


def parse_records(line: str) -> List[Record]:
    """Parse DogStatsD text (one line, or lines joined by newlines) the way statsd_exporter splits it.

    >>> parse_records("a.b:-2.5|g|@0.5|#k:v:w,x:")
    [Record(name='a.b', type='g', value=-2.5, tags={'k': 'v:w', 'x': ''}, sample_rate=0.5)]

    A multi-value line of a timer, histogram or distribution (``t:1:2.5|ms``) gives one record per value.
    """
    records: List[Record] = []
    for text in line.split("\n"):
        if not text:
            continue
        name, _, rest = text.partition(":")
        value, *fields = rest.split("|")
        kind, rate, tags = fields[0], 1.0, {}
        for field in fields[1:]:
            if field.startswith("@"):
                rate = float(field[1:])
            elif field.startswith("#"):
                for tag in field[1:].split(","):
                    key, _, tag_value = tag.partition(":")
                    tags[key] = tag_value
        values = value.split(":") if kind in ("ms", "h", "d") else (value,)
        records.extend(Record(name, kind, float(v), dict(tags), rate) for v in values)
    return records


class Capture:
    """What a client emitted during :func:`capture`: raw ``lines`` and parsed ``records``.

    >>> cap = Capture(["a:1|c", "a:2|c|#k:v"])
    >>> [r.value for r in cap.filter("a", tags={"k": "v"})]
    [2.0]
    """

    def __init__(self, lines: List[str]) -> None:
        self.lines = lines

    @property
    def records(self) -> List[Record]:
        """Every record so far, in order."""
        return [r for line in self.lines for r in parse_records(line)]

    def filter(
        self, name: str | None = None, type: str | None = None, tags: dict | None = None
    ) -> List[Record]:
        """Records matching ``name``, ``type`` and containing all of ``tags`` (each optional)."""
        return [
            r
            for r in self.records
            if (name is None or r.name == name)
            and (type is None or r.type == type)
            and all(r.tags.get(k) == str(v) for k, v in (tags or {}).items())
        ]

    def dump(self) -> str:
        """Every record, one a line (what failing assertions print)."""
        records = self.records
        if not records:
            return "  (nothing was emitted)"
        return "\n".join(f"  {r.name} {r.type} {r.value:g} {r.tags} @{r.sample_rate:g}" for r in records)

    def _fail(self, message: str) -> None:
        raise AssertionError(f"{message}\nrecords captured ({len(self.records)}):\n{self.dump()}")

    def assert_emitted(
        self,
        name: str | Metric,
        *,
        type: str | None = None,
        value: float | None = None,
        tags: dict | None = None,
        times: int | None = None,
        **tag_values: object,
    ) -> Record:
        """Assert that matching records exist (exactly ``times`` of them if given); returns the last.

        ``name`` may be a declared metric (:mod:`statsd_instrument.metrics`): its wire name (with its
        client's prefix) and type are used, and keyword arguments are tag values:
        ``cap.assert_emitted(ORDERS, status="paid")``.

        >>> Capture(["a:1|c"]).assert_emitted("b")
        Traceback (most recent call last):
        ...
        AssertionError: no record named 'b'
        records captured (1):
          a c 1 {} @1
        """
        name, type, tags = _declared(name, type, tags, tag_values)
        found = [r for r in self.filter(name, type, tags) if value is None or r.value == value]
        wanted = f"{name!r}" + "".join(
            f" {label}={v!r}"
            for label, v in (("type", type), ("value", value), ("tags", tags))
            if v is not None
        )
        if not found or (times is not None and len(found) != times):
            count = f" {times} time(s), found {len(found)}" if times is not None and found else ""
            self._fail(f"no record named {wanted}" if not count else f"expected {wanted}{count}")
        return found[-1]

    def assert_not_emitted(
        self, name: str | Metric, *, tags: dict | None = None, **tag_values: object
    ) -> None:
        """Assert that no record has this name (and these tags, if given; a declared metric as above).

        >>> Capture(["a:1|c"]).assert_not_emitted("b")
        """
        name, _, tags = _declared(name, None, tags, tag_values)
        if self.filter(name, None, tags):
            self._fail(f"unexpected record {name!r}" + (f" with tags {tags!r}" if tags else ""))

    def assert_consistent(self, max_values: int = 50) -> None:
        """Assert one type per name, no collision with another family or the exporter's own metrics, and
        bounded tag values (defined in the module docstring); every problem is listed.

        >>> Capture(["jobs:1|c", "jobs:5|ms", "hits:1|c|#user:1234567"]).assert_consistent()
        Traceback (most recent call last):
        ...
        AssertionError: metrics that break the exporter or Prometheus:
          'jobs' (jobs, histogram) was already sent as a counter in this process; ...
          hits: tag user='1234567' carries an identifier (a new series per value)
        records captured (3):
        ...
        """
        problems: list = []
        sent = guard.SentSeries()
        judged: set = set()
        values: dict = {}
        for record in self.records:
            if (record.name, record.type) not in judged and record.type in _GUARDED_KINDS:
                judged.add((record.name, record.type))
                try:
                    guard.check_series(record.name, record.type, sent)
                except guard.GuardError as err:
                    problems.append(str(err))
            for key, value in record.tags.items():
                seen = values.setdefault((record.name, key), set())
                if value not in seen and IDENTIFIER_VALUE.search(value):
                    problems.append(
                        f"{record.name}: tag {key}={value!r} carries an identifier (a new series per value)"
                    )
                seen.add(value)
        for (name, key), seen in values.items():
            if len(seen) > max_values:
                sample = ", ".join(sorted(seen)[:5])
                count = len(seen)
                problems.append(
                    f"{name}: tag {key} has {count} distinct values (more than {max_values}: {sample}, ...)"
                )
        if problems:
            self._fail(
                "metrics that break the exporter or Prometheus:\n" + "\n".join(f"  {p}" for p in problems)
            )

    def total(self, name: str | Metric, tags: dict | None = None, **tag_values: object) -> float:
        """Sum of the values of the matching records (a counter's total; a declared metric as above).

        >>> Capture(["a:1|c", "a:2|c"]).total("a")
        3.0
        """
        name, _, tags = _declared(name, None, tags, tag_values)
        return sum(r.value for r in self.filter(name, None, tags))


def _declared(
    name: object, type: str | None, tags: dict | None, tag_values: dict
) -> tuple[str, str | None, dict | None]:
    """(wire name, type, tags) to look for: a declared metric gives its own; ``tag_values`` join ``tags``.

    >>> from statsd_instrument.metrics import Counter
    >>> _declared(Counter("paid_total", "Paid."), None, None, {})
    ('paid_total', 'c', None)
    """
    if tag_values:
        tags = {**(tags or {}), **tag_values}
    if isinstance(name, Metric):
        prefix = name.client.settings.prefix
        return (f"{prefix}.{name.name}" if prefix else name.name), type or name.statsd_type, tags
    if not isinstance(name, str):
        raise TypeError(f"expected a metric name or a declared metric, got {name!r}")
    return name, type, tags


@contextlib.contextmanager
def capture(client: Any = None, strict: bool | None = True) -> Iterator[Capture]:
    """Test mode for a block: keep (and parse) what ``client`` (default ``statsd``) emits; send nothing.

    >>> from statsd_instrument import statsd
    >>> with capture() as cap:
    ...     statsd.gauge("temperature", -3)
    >>> [r.value for r in cap.records]
    [0.0, -3.0]
    """
    if client is None:
        from statsd_instrument.client import statsd as client
    with client.capture_lines(strict=strict) as lines:
        yield Capture(lines)


def _statsd_capture() -> Iterator[Capture]:
    """pytest fixture: the module-level ``statsd`` in test mode for one test (see :func:`capture`)."""
    with capture() as cap:
        yield cap


if pytest is not None:
    statsd_capture = pytest.fixture(name="statsd_capture")(_statsd_capture)
