"""Code written for datadog's ``statsd`` object runs on ``from statsd_instrument import statsd``.

The same program runs once on a datagram-for-datagram datadog ``DogStatsd`` and once on our module-level
``statsd``, each sending to its own UdpCollector, and the lines are compared statement by statement. The
datadog client has origin detection off (``origin_detection_enabled=False``, no container id) and telemetry
off: datadog appends ``|c:<container>`` / ``|e:`` / ``|card:`` fields and sends ``datadog.dogstatsd.*``
telemetry lines that statsd_exporter before 0.29 rejects and that are not metrics of the program.
Expected differences, each asserted separately: ``timed`` (datadog sends seconds with type ms; ours float
milliseconds), a negative absolute gauge (datadog's ``-5|g`` would be read as a delta by the exporter; ours
sends ``0|g`` then ``-5|g``) and ``set`` (refused: statsd_exporter has no sets).
Not offered by statsd_instrument's ``statsd`` (reported to the lead): ``distributed``,
``gauge_with_timestamp``, ``count_with_timestamp``.
"""

from __future__ import annotations

import logging
import re

import pytest
from datadog.dogstatsd import DogStatsd

import statsd_instrument
from statsd_instrument import statsd
from tests.callbycall import between_marks, run_statement_by_statement, statements
from tests.helpers import UdpCollector

# datadog's metric calls (timed and the documented differences below), positional and keyword
PROGRAM = """
statsd.increment("page.views")
statsd.increment("page.views", 5)
statsd.increment("page.views", tags=["endpoint:/cart", "method:GET"])
statsd.increment("page.views", 2, ["status:200"], 0.5)
statsd.increment("page.views", value=1.5, sample_rate=1)
statsd.decrement("jobs.left")
statsd.decrement("jobs.left", 3, tags=["queue:emails"])
statsd.count("files.transferred", 124)
statsd.count("files.transferred", 3, tags=["kind:pdf"], sample_rate=0.5)
statsd.gauge("users.online", 123)
statsd.gauge("active.connections", 1001, tags=["protocol:http"])
statsd.gauge("ratio", 0.25, sample_rate=0.5)
statsd.gauge("zero", 0)
statsd.histogram("uploaded.file.size", 1445)
statsd.histogram("album.photo.count", 26, tags=["gender:female"])
statsd.histogram("latency", 0.125, sample_rate=0.9)
statsd.distribution("batch.size", 3.5)
statsd.distribution("batch.size", 7, tags=["queue:default"], sample_rate=0.5)
statsd.timing("query.response.time", 1234)
statsd.timing("query.response.time", 12.5, tags=["db:main"])
statsd.timing("query.response.time", 0.75, None, 0.5)
for _ in range(10):
    statsd.increment("sampled", sample_rate=0.3)
"""

DATADOG_ENV = (
    "DD_ENTITY_ID",
    "DATADOG_TAGS",
    "DD_TAGS",
    "DD_ENV",
    "DD_SERVICE",
    "DD_VERSION",
    "DD_EXTERNAL_ENV",
)


@pytest.fixture
def clients(monkeypatch):
    """(datadog client, its collector, our collector) with ours configured to send to its collector."""
    for name in DATADOG_ENV:
        monkeypatch.delenv(name, raising=False)
    theirs_collector, ours_collector = UdpCollector(), UdpCollector()
    datadog = DogStatsd(
        host="127.0.0.1",
        port=theirs_collector.port,
        disable_telemetry=True,
        origin_detection_enabled=False,
        disable_buffering=True,
    )
    statsd_instrument.configure(host="127.0.0.1", port=ours_collector.port, protocol="udp", prefix="")
    try:
        yield datadog, theirs_collector, ours_collector
    finally:
        datadog.close_socket()
        statsd.close()
        statsd_instrument.configure()
        theirs_collector.close()
        ours_collector.close()


def _flush(namespace: dict, last: bool) -> None:
    namespace["statsd"].flush()


def test_datadog_program_sends_the_same_lines_call_by_call(clients):
    datadog, theirs, ours = clients
    count = len(statements(PROGRAM))
    run_statement_by_statement(PROGRAM, {"statsd": datadog}, theirs.port)
    run_statement_by_statement(PROGRAM, {"statsd": statsd}, ours.port, _flush)
    expected, got = between_marks(theirs, count), between_marks(ours, count)
    assert len(expected) == len(got) == count
    for source, want, have in zip(statements(PROGRAM), expected, got):
        assert have == want, f"statement {source!r}"
    sent = [line for chunk in expected for line in chunk]
    assert 0 < sum(line.startswith("sampled:") for line in sent) < 10  # sampling decided both ways
    assert "page.views:1|c|#endpoint:/cart,method:GET" in sent and "jobs.left:-3|c|#queue:emails" in sent


TIMED_PROGRAM = """
@statsd.timed("render.time", tags=["view:home"])
def render():
    return "ok"
render()
with statsd.timed("block.time", tags=["step:load"], sample_rate=1):
    pass
"""


def _shape(line: str) -> str:
    return re.sub(r":[0-9.e+-]+\|", ":<value>|", line)


def test_timed_sends_same_name_type_and_tags_with_milliseconds(clients):
    datadog, theirs, ours = clients
    count = len(statements(TIMED_PROGRAM))
    run_statement_by_statement(TIMED_PROGRAM, {"statsd": datadog}, theirs.port)
    run_statement_by_statement(TIMED_PROGRAM, {"statsd": statsd}, ours.port, _flush)
    expected, got = between_marks(theirs, count), between_marks(ours, count)
    assert [[_shape(ln) for ln in chunk] for chunk in got] == [
        [_shape(ln) for ln in chunk] for chunk in expected
    ]
    assert [_shape(ln) for ln in got[1]] == ["render.time:<value>|ms|#view:home"]
    assert [_shape(ln) for ln in got[2]] == ["block.time:<value>|ms|#step:load"]


def test_documented_differences_negative_gauge_and_set(clients, caplog):
    datadog, theirs, ours = clients
    program = 'statsd.gauge("temperature", -5, tags=["room:a"])\n'
    run_statement_by_statement(program, {"statsd": datadog}, theirs.port)
    run_statement_by_statement(program, {"statsd": statsd}, ours.port, _flush)
    assert between_marks(theirs, 1) == [["temperature:-5|g|#room:a"]]  # a delta for statsd_exporter
    assert between_marks(ours, 1) == [["temperature:0|g|#room:a", "temperature:-5|g|#room:a"]]

    statsd_instrument.configure(host="127.0.0.1", port=ours.port, protocol="udp", prefix="", strict=False)
    with caplog.at_level(logging.WARNING):
        statsd.set("visitors.uniques", 999)  # accepted without raising; not sent
    statsd.flush()
    assert not any(line.startswith("visitors.uniques") for line in ours.lines())
    assert "visitors.uniques" in caplog.text
