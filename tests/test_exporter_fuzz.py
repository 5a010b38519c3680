"""Property tests: hostile and near-valid input never crashes the exporter nor breaks ``/metrics``.

Every page is parsed with prometheus_client's parser; valid lines must all be counted and summed.
"""

from __future__ import annotations

import random
import socket

import pytest
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


simple_values = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda v: f"{v:.3f}"),
    st.sampled_from(["0", "-0", ".5", "5.", "1e3", "2E-2", "+4", "NaN", "1e400", "0x1p3"]),
)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["request_latency_seconds", "t.x", "re_lat", "h"]),
            st.lists(simple_values, min_size=1, max_size=6),
            st.sampled_from(["ms", "h", "d", "c", "g"]),
            st.sampled_from(["", "|@0.5", "|#endpoint:/x,status:200", "|@0.25|#a:b", "|#a:b:c"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_multi_value_lines_on_remembered_shapes_match_the_full_parser(lines):
    """Multi-value lines (``t:1:2.5:3|ms``, statsd_exporter 0.27.1+) fed to remembered shapes, before and
    after single-value lines of the same shape, give exactly the page the full parser gives."""
    fast, slow = Ingestor(MAPPING), Ingestor(MAPPING)
    slow._remember = lambda *args: None
    for now, (name, values, kind, tail) in enumerate(lines):
        for text in (f"{name}:{values[0]}|{kind}{tail}", f"{name}:{':'.join(values)}|{kind}{tail}"):
            fast.handle_datagram(text.encode(), now=float(now))
            slow.handle_datagram(text.encode(), now=float(now))
    assert fast.render(now=20.0) == slow.render(now=20.0)


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


#: every hostile class of issue 11, as raw lines (what a client without guard rails would send); each would
#: break or crash the real v0.28.0 exporter or cost it a label. The emulation must shrug them all off.
HOSTILE_CLASSES = {
    "exporter's own series as a name": [
        "go_goroutines:1|c",
        "process_resident_memory_bytes:5|g",
        "statsd_exporter_lines_total:1|c",
        "statsd_exporter_sample_errors_total:1|c|#reason:x",
        "promhttp_metric_handler_requests_total:1|c",
        "statsd_metric_mapper_cache_length:1|g",
        "go_gc_duration_seconds:1|ms",
    ],
    "reserved label keys": ["h_hist:1|h|#le:1", "s_sum:1|ms|#quantile:0.5", "c_res:1|c|#__name__:x"],
    "empty, bare and odd tags": [
        "t_tags:1|c|#kind:",
        "t_tags:1|c|#:v",
        "t_tags:1|c|#bare",
        "t_tags:1|c|#,,",
        "t_tags:1|c|#a:b:c",
        "t_tags:1|c|#sp ace:x",
    ],
    "tag values that corrupt a line": [
        "t_corrupt:1|c|#path:/a|b",
        "t_corrupt:1|c|#q:a,b#c",
        't_corrupt:1|c|#q:"\\',
    ],
    "type conflicts": ["t_type:1|c", "t_type:1|g", "t_type:1|ms", "t_hist:1|h", "t_hist_sum:1|c"],
    "histogram and summary sample names": ["lat:1|ms", "lat_count:1|c", "lat_sum:1|g", "lat_bucket:1|c"],
    "values": [
        "v_nan:NaN|g",
        "v_inf:+Inf|c",
        "v_neg:-5|c",
        "v_huge:1e308|c",
        "v_huge:1e308|c",
        "v_sep:1_000|g",
        "v_hex:0x1p3|g",
        "v_bad:1..2|c",
        "v_rate:1|c|@1e999",
        "v_rate:1|ms|@1e-7",
    ],
    "names": ["", ":1|c", "é:1|c", "9lives:1|c", "a..b:1|c", "-:1|c", "x" * 5000 + ":1|c", "a\x00b:1|c"],
    "fields": ["f:1|c|c:abc", "f:1|c|T1|card:low", "f:1|c|@0.5|#a:b|T1|e:x", "f:1|c||", "f:1|s"],
}
LEGIT = ["request_count:1|c|#status:200,service:hostile", "request_latency_seconds:12.5|ms|#status:200"]


@pytest.mark.parametrize("klass", sorted(HOSTILE_CLASSES))
def test_each_hostile_class_leaves_every_later_scrape_working_and_legit_samples_counted(klass):
    rounds = 3
    with Exporter(MAPPING, udp="127.0.0.1:0", web="127.0.0.1:0") as exporter:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(rounds):  # hostile lines in their own datagrams and mixed with legit ones
                for line in HOSTILE_CLASSES[klass]:
                    sock.sendto(line.encode("utf-8", "surrogateescape"), ("127.0.0.1", exporter.udp_port))
                    sock.sendto(
                        "\n".join([LEGIT[0], line, LEGIT[1]]).encode(), ("127.0.0.1", exporter.udp_port)
                    )
        assert exporter.wait_for_packets(rounds * 2 * len(HOSTILE_CLASSES[klass]))
        for _ in range(2):  # this scrape and every later one
            samples = scrape(exporter.metrics_url)  # parsed by prometheus_client: raises if broken
            requests = (("service", "hostile"), ("status", "200"))
            assert samples[("http_requests_total", requests)] == rounds * len(HOSTILE_CLASSES[klass])
            count = sum(v for (n, labels), v in samples.items() if n == "http_request_duration_seconds_count")
            assert count == rounds * len(HOSTILE_CLASSES[klass])


def test_a_multi_value_line_of_a_remembered_shape_skips_the_full_parser():
    ingest = Ingestor(MAPPING)
    slow_lines: list = []
    full = ingest._slow_line
    ingest._slow_line = lambda line, now: (slow_lines.append(line), full(line, now))
    tags = b"|#service:s,method:GET,endpoint:/x,status:200"
    ingest.handle_datagram(b"request_latency_seconds:1:2|ms" + tags, now=0.0)  # parsed, then remembered
    ingest.handle_datagram(b"request_latency_seconds:3:4.5:600|ms" + tags, now=1.0)
    ingest.handle_datagram(b"request_latency_seconds:7|ms" + tags, now=1.0)
    assert slow_lines == [b"request_latency_seconds:1:2|ms" + tags]
    page = parse_page(ingest.render(now=1.0))
    labels = (("endpoint", "/x"), ("method", "GET"), ("service", "s"), ("status", "200"))
    assert page[("http_request_duration_seconds_count", labels)] == 6
    assert page[("http_request_duration_seconds_sum", labels)] == pytest.approx(0.6175)
    assert page[("statsd_exporter_samples_total", ())] == 6
