"""Wire format of every call, name checks, and the property that no tag value can break a line (the tag
rules themselves are tested once, at their owner: tests/test_validation.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statsd_instrument import Client
from statsd_instrument.testing import parse_records
from statsd_instrument.validation import DroppedTagWarning, check_name, tag_value
from statsd_instrument.wire import format_ms, format_ms_of


@pytest.fixture
def client():
    c = Client(protocol="null", strict=True)
    yield c
    c.close()


def emitted(client, call):
    with client.capture_lines() as lines:
        call(client)
    return lines


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda c: c.increment("hits"), "hits:1|c"),
        (lambda c: c.increment("hits", 3, tags=["a:b"]), "hits:3|c|#a:b"),
        (lambda c: c.count("hits", 2.5), "hits:2.5|c"),
        (lambda c: c.decrement("slots"), "slots:-1|c"),
        (lambda c: c.decrement("slots", 4, tags={"k": "v"}), "slots:-4|c|#k:v"),
        (lambda c: c.gauge("depth", 7), "depth:7|g"),
        (lambda c: c.gauge("depth", 0.5), "depth:0.5|g"),
        (lambda c: c.gauge("depth", -5), "depth:0|g\ndepth:-5|g"),
        (lambda c: c.gauge("depth", -5, tags=["q:a"]), "depth:0|g|#q:a\ndepth:-5|g|#q:a"),
        (lambda c: c.gauge("in_flight", 1, delta=True), "in_flight:+1|g"),
        (lambda c: c.gauge("in_flight", -1, delta=True), "in_flight:-1|g"),
        (lambda c: c.timing("db", 12.3456789), "db:12.346|ms"),
        (lambda c: c.timing("db", 0.0004), "db:0|ms"),
        (lambda c: c.timing("db", 3), "db:3|ms"),
        (lambda c: c.histogram("size", 512, tags={"kind": "json"}), "size:512|h|#kind:json"),
        (lambda c: c.distribution("batch", 1e-7), "batch:1e-07|d"),
        (lambda c: c.send_line("legacy.x:1|c|@0.1"), "legacy.x:1|c|@0.1"),
    ],
)
def test_every_call_has_the_expected_wire_format(client, call, expected):
    assert emitted(client, call) == [expected]


def test_sampled_lines_carry_the_rate_and_are_sent_in_proportion(client):
    with client.capture_lines() as lines:
        for _ in range(2000):
            client.increment("sampled", sample_rate=0.25)
    assert set(lines) == {"sampled:1|c|@0.25"}
    assert 300 < len(lines) < 700  # 500 expected; a binomial(2000, .25) is inside this with p > 1 - 1e-20


def test_prefix_and_constant_tags_apply_and_call_tags_override(tmp_path):
    c = Client(protocol="null", prefix="shop", constant_tags="env:prod,region:eu", strict=True)
    try:
        assert emitted(c, lambda c: c.increment("orders", tags={"env": "dev"})) == [
            "shop.orders:1|c|#env:dev,region:eu"
        ]
    finally:
        c.close()


@pytest.mark.parametrize("name", ["", "1abc", "a b", "a:b", "a|b", "a#b", "a\nb", "é", "x" * 201, None, 3])
def test_bad_metric_names_are_refused_naming_them(client, name):
    with pytest.raises(ValueError, match="bad counter call for") as info:
        client.increment(name)
    assert repr(name)[:50] in str(info.value)


@pytest.mark.parametrize("key", ["le", "quantile", "__name__", "__x", "_-x"])
def test_reserved_tag_keys_are_refused_naming_the_key(client, key):
    with pytest.raises(ValueError, match="reserved tag key") as info:
        client.increment("ok", tags={key: "v"})
    assert repr(key if key != "_-x" else "__x") in str(info.value)


def test_tags_left_out_keep_the_metric_and_a_bare_string_is_refused(client):
    with pytest.warns(DroppedTagWarning, match="bare_tag"):
        assert emitted(client, lambda c: c.increment("ok", tags=["production", "k.k:v"])) == ["ok:1|c|#k_k:v"]
    with pytest.raises(ValueError, match="not a str"):
        client.increment("ok", tags="a:b")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "3", None, True, [1]])
def test_non_numbers_are_refused(client, value):
    with pytest.raises(ValueError, match="value"):
        client.histogram("h", value)


def test_names_are_checked_once_then_cached():
    check_name("cached.metric_name")
    from statsd_instrument import validation

    assert "cached.metric_name" in validation._good_names


def test_ms_formatting_keeps_microseconds_and_never_rounds_to_whole_ms():
    assert format_ms(0.4) == "0.4"
    assert format_ms(0.0015) in ("0.001", "0.002")
    assert format_ms(1234.5678) == "1234.568"


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=50))
def test_durations_formatted_in_one_go_read_exactly_as_one_at_a_time(seconds):
    assert format_ms_of(seconds) == [format_ms(s * 1000.0) for s in seconds]
    assert format_ms_of(seconds, 1.0) == [format_ms(ms) for ms in seconds]  # milliseconds as they are


def test_durations_that_are_not_finite_and_positive_are_left_out_alone():
    assert format_ms_of([0.001, float("inf"), -0.5, float("nan"), 0.002]) == ["1", "", "", "", "2"]


tag_values = st.one_of(st.text(), st.integers(), st.floats(allow_nan=False), st.booleans())


@pytest.mark.filterwarnings("ignore::statsd_instrument.validation.DroppedTagWarning")
@given(value=tag_values, other=st.text())
def test_any_tag_value_yields_a_line_that_parses_back_to_the_normalised_tags(value, other):
    c = Client(protocol="null", strict=True)
    try:
        with c.capture_lines() as lines:
            c.timing("prop", 1.5, tags={"first": value, "second": other})
            c.increment("prop_list", tags=[f"first:{other}"])
    finally:
        c.close()
    assert len(lines) == 2  # a value that normalises to nothing leaves its tag out, never the metric
    for line in lines:
        assert "\n" not in line and "\r" not in line
        (record,) = parse_records(line)
        assert record.name in ("prop", "prop_list")
    first, second = parse_records(lines[0])[0], parse_records(lines[1])[0]
    expected = {"first": tag_value(value), "second": tag_value(other)}
    assert first.tags == {k: v for k, v in expected.items() if v}
    assert first.value == 1.5 and first.type == "ms"
    assert second.tags == ({"first": tag_value(other)} if tag_value(other) else {})
    for text in (*first.tags.values(), *second.tags.values()):
        assert not set(text) & set(",|#\n\r") and text == text.strip()
