"""Property tests: hostile and near-valid input never crashes the exporter nor breaks ``/metrics``.

Every page is parsed with prometheus_client's parser; valid lines must all be counted and summed.
"""

from __future__ import annotations

import random
import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from statsd_instrument.exporter import Exporter
from statsd_instrument.exporter.ingest import Ingestor
from statsd_instrument.mapping import parse_mapping
from tests.helpers import REPO, scrape

MAPPING = parse_mapping(
    (REPO / "exporter-mapping.yml").read_text()
    + '  - match: "app.*.*"\n    name: "app_${1}_total"\n    labels: {part: "$2"}\n'
    + '  - match: "^re_(\\\\w+)$"\n    match_type: regex\n    name: "re_${1}"\n'
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters that matter to the statsd grammar and the text format, plus some that matter to neither.
SPECIAL = ':|#@,=[]{}."\\\n\r\t -_+$*é\x00'
pieces = st.text(alphabet=st.sampled_from(list(SPECIAL) + list("abcxyz019eEInfa")), max_size=12)
names = (
    st.sampled_from(["request_count", "request_latency_seconds", "app.web.get", "re_x", "le", "__x"]) | pieces
)
values = (
    st.sampled_from(["1", "-1", "+2", "0.5", "1e3", "NaN", "+Inf", "-Inf", "0x1p3", "", "1:2:3", "x"])
    | pieces
)
types = st.sampled_from(["c", "g", "ms", "h", "d", "s", "", "c\r", "x"])
tails = st.lists(
    st.sampled_from(
        ["@0.5", "@0", "@-1", "@x", "#a:b", "#le:1", "#quantile:0.5", "#__n:v", "#k", "c:id", "T1", ""]
    )
    | pieces.map(lambda p: "#" + p),
    max_size=3,
)


@st.composite
def near_valid_lines(draw) -> str:
    line = f"{draw(names)}:{draw(values)}|{draw(types)}"
    for tail in draw(tails):
        line += "|" + tail
    return line


def parse_page(page: str) -> dict:
    """Every sample of a page, parsed by prometheus_client (raises if the page is not valid)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }


@FUZZ
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=8))
def test_random_bytes_never_crash_and_the_page_stays_valid(datagrams):
    ingest = Ingestor(MAPPING)
    ingest.handle_datagrams(datagrams, now=0.0)
    samples = parse_page(ingest.render(now=0.0))
    assert samples[("statsd_exporter_lines_total", ())] == sum(d.count(b"\n") + 1 for d in datagrams)
    assert samples[("statsd_exporter_udp_packets_total", ())] == len(datagrams)


@FUZZ
@given(st.lists(near_valid_lines(), min_size=1, max_size=20))
def test_near_valid_lines_never_crash_and_the_page_stays_valid(lines):
    ingest = Ingestor(MAPPING)
    for line in lines:  # twice, so remembered line shapes (the fast path) see them too
        ingest.handle_datagram(line.encode(), now=0.0)
        ingest.handle_datagram(line.encode(), now=1.0)
    parse_page(ingest.render(now=1.0))


@FUZZ
@given(st.lists(near_valid_lines(), min_size=1, max_size=20))
def test_remembered_shapes_give_the_same_page_as_the_full_parser(lines):
    fast, slow = Ingestor(MAPPING), Ingestor(MAPPING)
    slow._remember = lambda *args: None  # never take the fast path
    payload = "\n".join(lines).encode()
    for now in (0.0, 1.0, 2.0):
        fast.handle_datagram(payload, now=now)
        slow.handle_datagram(payload, now=now)
    assert fast.render(now=2.0) == slow.render(now=2.0)


label_values = st.text(
    alphabet=st.characters(blacklist_characters=",|#\n", blacklist_categories=["Cs"]), min_size=1
)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["c", "g", "h"]),
            st.sampled_from(["alpha", "beta.one", "gamma-two"]),
            st.integers(min_value=0, max_value=10_000),
            label_values,
        ),
        min_size=1,
        max_size=30,
    )
)
def test_every_valid_line_is_counted_and_summed(events):
    ingest = Ingestor(parse_mapping("defaults:\n  observer_type: histogram\n"))
    expected_counters: dict = {}
    for kind, name, value, tag in events:
        metric = f"{kind}_{name}"  # one type per name: no conflicts
        ingest.handle_datagram(f"{metric}:{value}|{kind}|#tag:{tag}".encode(), now=0.0)
        if kind == "c":
            key = (metric.replace(".", "_").replace("-", "_"), tag)
            expected_counters[key] = expected_counters.get(key, 0) + value
    samples = parse_page(ingest.render(now=0.0))
    events_total = sum(v for (n, _), v in samples.items() if n == "statsd_exporter_events_total")
    assert events_total == len(events)
    for (name, tag), total in expected_counters.items():
        assert samples[(name + "_total", (("tag", tag),))] == total


def test_random_datagrams_over_udp_keep_metrics_answering():
    rng = random.Random(4)
    with Exporter(MAPPING, udp="127.0.0.1:0", web="127.0.0.1:0") as exporter:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(300):
                junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
                sock.sendto(junk, ("127.0.0.1", exporter.udp_port))
            sock.sendto(b"request_count:1|c|#status:200", ("127.0.0.1", exporter.udp_port))
        assert exporter.wait_for_packets(301)
        samples = scrape(exporter.metrics_url)
        assert samples[("http_requests_total", (("status", "200"),))] == 1.0
        assert samples[("statsd_exporter_udp_packets_total", ())] == 301.0
