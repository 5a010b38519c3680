"""The rules owned by statsd_instrument.validation, each tested once here with literal expected values.

Where the old copies disagreed (wire.py, http_metrics.py, legacy/tags.py; five host:port parsers; two
boolean parsers), the case that settles it is marked "settled".
"""

from __future__ import annotations

import warnings

import pytest

from statsd_instrument import Client
from statsd_instrument.validation import (
    DroppedTagWarning,
    TagPolicy,
    TagText,
    check_name,
    check_port,
    check_seconds,
    format_tags,
    label_name,
    parse_bool,
    parse_host_port,
    tag_list,
    tag_text,
)

# -- tag keys: the label name statsd_exporter v0.28.0 makes of a DogStatsD tag key (EscapeMetricName) ------


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("status", "status"),
        ("x", "x"),  # settled: one character is a label name (tag_list used to refuse it, the client sent it)
        ("availability-zone", "availability_zone"),  # settled: escaped, no longer refusing the metric
        ("queue.kind", "queue_kind"),
        ("a--b", "a_b"),  # a run of '-' is one '_'
        ("a---b", "a_b"),
        ("a-.-b", "a___b"),  # only '-' after '-' collapses
        ("9x", "_9x"),  # a leading digit gets a '_' in front
        ("1", "_1"),
        ("k k", "k_k"),
        ("zoné", "zon_"),  # one '_' per character outside [A-Za-z0-9_], not per byte
        ("#env", "env"),  # the exporter strips one leading '#' of each tag
        ("_", "_"),
    ],
)
def test_a_key_becomes_the_label_name_the_exporter_would_make(key, label):
    assert label_name(key) == label
    assert tag_text([f"{key}:v"]) == TagText(f"{label}:v", ())


@pytest.mark.parametrize("key", ["le", "quantile", "__name__", "__x", "_-x", "#le", " le "])
def test_reserved_label_names_are_refused_whatever_the_key_escapes_from(key):
    with pytest.raises(ValueError, match="reserved tag key"):
        tag_text({key: "1"})


# -- tag values ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("/a,b|c#d", "/a_b_c_d"),
        ("a\tb", "a_b"),  # settled: tab (every control character) becomes '_' (http_metrics let it through)
        ("a\nb\rc", "a_b_c"),
        ("a\x00b\x7fc\x1fd", "a_b_c_d"),
        ("  spaced \t\n", "spaced"),  # edge whitespace stripped before anything is replaced
        ("k:v:w", "k:v:w"),  # the exporter splits a tag at its first ':' only
        ("/user/<id>", "/user/<id>"),
        (200, "200"),
        (2.5, "2.5"),
        (True, "True"),
        ("é☃", "é☃"),
    ],
)
def test_a_value_keeps_its_text_but_never_breaks_the_line(value, sent):
    assert tag_text({"k": value}) == TagText(f"k:{sent}", ())


# -- tags not sent: the metric is kept, the reason reported --------------------------------------------------


def test_bare_empty_value_and_empty_key_tags_are_left_out_with_their_reason():
    # settled: an empty value was sent as 'k:' by the client and as 'k:_' by the middlewares; a bare tag
    # refused the metric in the client and was sent bare by the legacy clients. Now none is sent.
    assert tag_text(["vip", "kind:", ":x", "kind: ", "ok:1", " :y"]) == TagText(
        "ok:1", ("bare_tag", "empty_value", "empty_key", "empty_value", "empty_key")
    )
    assert tag_text({"vip": None, "tier": "", "a": 1}) == TagText("a:1", ("bare_tag", "empty_value"))
    assert tag_text(None) == TagText("", ()) and tag_text([]) == TagText("", ())


def test_a_later_tag_with_the_same_label_name_replaces_an_earlier_one():
    assert tag_text(["a-b:1", "a_b:2", "c:3"]) == TagText("a_b:2,c:3", ())


@pytest.mark.parametrize("tags", ["a:b", ["a:b", 3], [None]])
def test_what_is_not_a_list_or_dict_of_tags_is_refused(tags):
    with pytest.raises(ValueError, match=r"not a str|'key:value' str"):
        tag_text(tags)


def test_the_policy_counts_every_drop_and_warns_only_when_strict():
    production = TagPolicy(strict=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert format_tags(["vip", "x:1"], production) == "|#x:1"
        assert format_tags([":y"], production) == ""
    assert production.counts == {"bare_tag": 1, "empty_value": 0, "empty_key": 1}
    strict = TagPolicy(strict=True)
    with pytest.warns(DroppedTagWarning, match=r"\['kind:'\]: not sent \(empty_value\)"):
        assert format_tags(["kind:"], strict, constant=("env:prod",)) == "|#env:prod"
    assert strict.counts["empty_value"] == 1


def test_call_tags_replace_constant_tags_with_the_same_key_and_keep_their_order():
    policy = TagPolicy(strict=False)
    assert format_tags({"env": "dev"}, policy, ("env:prod", "region:eu")) == "|#env:dev,region:eu"
    assert format_tags(None, policy, ("env:prod",)) == "|#env:prod"
    assert format_tags(None, policy) == ""


def test_a_client_counts_left_out_tags_in_its_stats_on_every_call_and_still_sends_the_metric():
    c = Client(protocol="null", strict=True)
    try:
        with c.capture_lines() as lines, pytest.warns(DroppedTagWarning):
            for _ in range(2):  # the second call must be counted too (not hidden by the tag cache)
                c.increment("jobs", tags=["vip", "queue.kind:mail", "kind:"])
        assert lines == ["jobs:1|c|#queue_kind:mail"] * 2
    finally:
        c.close()
    production = Client(protocol="null", strict=False)
    try:
        production.increment("jobs", tags=["vip", ":x"])
        production.increment("jobs", tags=["vip", ":x"])
        assert production.stats["dropped_tags"] == {"bare_tag": 2, "empty_value": 0, "empty_key": 2}
        assert production.stats["invalid_calls"] == 0
    finally:
        production.close()


def test_static_tags_from_configuration_are_checked_at_start_up_naming_the_field():
    assert tag_list("env:prod, availability-zone:eu-1a", "STATSD_TAGS") == [
        "env:prod",
        "availability_zone:eu-1a",
    ]
    assert tag_list({"x": 1}, "tags") == ["x:1"]  # settled: one-character keys are fine here too
    with pytest.raises(ValueError, match=r"^STATSD_TAGS='env': tag not sent \(bare_tag\)"):
        tag_list("env", "STATSD_TAGS")
    with pytest.raises(ValueError, match=r"^tags=\['status:x'\]: tag key 'status' is set by"):
        tag_list(["status:x"], "tags", reserved=("status",))
    with pytest.raises(ValueError, match=r"^tags=42: expected a mapping"):
        tag_list(42, "tags")  # type: ignore[arg-type]


# -- metric names --------------------------------------------------------------------------------------------


def test_metric_names():
    assert check_name("http.requests-total_2") == "http.requests-total_2"
    for bad in ("", "1abc", "a b", "a:b", "é", "x" * 201, None):
        with pytest.raises(ValueError, match="invalid metric name"):
            check_name(bad)


# -- host:port -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        ("statsd:8125", {}, ("statsd", 8125)),
        ("[::1]:8125", {}, ("::1", 8125)),
        (":8125", {}, ("127.0.0.1", 8125)),  # a target without host: this machine
        (":9125", {"default_host": "0.0.0.0", "listen": True}, ("0.0.0.0", 9125)),  # the exporter, as Go
        ("127.0.0.1:0", {"listen": True}, ("127.0.0.1", 0)),  # settled: port 0 only where we listen
    ],
)
def test_host_port(text, options, expected):
    assert parse_host_port(text, "--to", **options) == expected


@pytest.mark.parametrize("text", ["statsd", "statsd:", "statsd:0", "statsd:65536", "x:y", "a b:1", ":-1"])
def test_bad_host_port_names_the_field_and_the_value(text):
    # settled: the legacy relay sent to port 0 and the exporter's relay refused it; all targets refuse it now
    with pytest.raises(ValueError) as info:
        parse_host_port(text, "--to")
    assert str(info.value) == f"--to={text!r}: expected HOST:PORT"


def test_ports():
    assert check_port(" 8125 ", "STATSD_PORT") == 8125
    assert check_port("0", "--listen", listen=True) == 0
    for bad in ("0", "65536", "nine", True, 1.5):
        with pytest.raises(ValueError, match="expected an integer port 1-65535"):
            check_port(bad, "STATSD_PORT")


# -- booleans and durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[(True, True), ("1", True), ("YES", True), (" on ", True), ("true", True)],
        *[(False, False), ("0", False), ("no", False), ("off", False), ("False", False), ("", False)],
    ],
)
def test_booleans(value, expected):
    assert parse_bool(value, "STATSD_IN_FLIGHT") is expected


def test_a_bad_boolean_has_one_message_everywhere():
    # settled: the configuration and the Flask extension used two wordings
    with pytest.raises(ValueError) as info:
        parse_bool("maybe", "STATSD_IN_FLIGHT")
    assert str(info.value) == "STATSD_IN_FLIGHT='maybe': expected one of 1/0, true/false, yes/no, on/off"


def test_durations():
    assert check_seconds(1, "flush_interval_s", 0.01, 60) == 1.0
    assert check_seconds(0.01, "flush_interval_s", 0.01, 60) == 0.01
    for bad in (0.001, 61, "1", True, float("nan"), None):
        with pytest.raises(ValueError) as info:
            check_seconds(bad, "flush_interval_s", 0.01, 60)
        assert str(info.value) == f"flush_interval_s={bad!r}: expected seconds between 0.01 and 60"
