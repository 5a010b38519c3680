"""Declared metrics (statsd_instrument.metrics): calls, tag checks, the cache, the zero start lines."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import os
import socket
import threading
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statsd_instrument import Client, Counter, Gauge, Histogram, Summary, metrics
from statsd_instrument.testing import Record, capture
from statsd_instrument.wire import format_ms, format_number
from tests.helpers import UdpCollector


@pytest.fixture
def client():
    c = Client(protocol="null", strict=True)
    yield c
    c.close()


def test_calls_send_the_lines_the_client_calls_would(client):
    orders = Counter("orders_total", "Orders.", tags=("status", "method"), client=client)
    checkout = Histogram("checkout_seconds", "Checkout.", tags=("step",), buckets=(0.1, 1), client=client)
    size = Histogram("payload_bytes", "Payload size.", timer=False, client=client)
    queue = Gauge("queue_depth", "Queue.", tags=("queue",), client=client)
    with client.capture_lines() as declared:
        orders.increment(status="paid", method="GET")
        orders.increment(2.5, method="GET", status="paid")  # keyword order does not matter
        checkout.observe(0.0123456, step="pay")
        size.observe(512)
        queue.set(-3, queue="mail")
        queue.set(7, queue="mail")
        queue.inc(queue="mail")
        queue.dec(2, queue="mail")
    with client.capture_lines() as plain:
        client.increment("orders_total", tags={"status": "paid", "method": "GET"})
        client.increment("orders_total", 2.5, tags={"status": "paid", "method": "GET"})
        client.timing("checkout_seconds", 12.3456, tags={"step": "pay"})
        client.histogram("payload_bytes", 512)
        client.gauge("queue_depth", -3, tags={"queue": "mail"})
        client.gauge("queue_depth", 7, tags={"queue": "mail"})
        client.gauge("queue_depth", 1, tags={"queue": "mail"}, delta=True)
        client.gauge("queue_depth", -2, tags={"queue": "mail"}, delta=True)
    assert declared == plain
    assert declared[2] == "checkout_seconds:12.346|ms|#step:pay"


def test_tag_values_are_normalised_and_keys_kept_in_declared_order(client):
    hits = Counter("hits_total", "Hits.", tags=("route", "code"), client=client)
    with client.capture_lines() as lines:
        hits.increment(code=200, route=" /a,b|c ")
    assert lines == ["hits_total:1|c|#route:/a_b_c,code:200"]


@pytest.mark.parametrize(
    "tags, problem",
    [
        ({"status": "paid", "method": "GET", "extra": "x"}, "['extra', 'method', 'status'] given"),
        ({"status": "paid"}, "['status'] given, ['method', 'status'] declared"),
        ({}, "[] given"),
    ],
)
def test_wrong_tag_keys_raise_in_strict_mode_naming_the_metric(client, tags, problem):
    orders = Counter("orders_total", "Orders.", tags=("status", "method"), client=client)
    with pytest.raises(ValueError, match=r"bad counter call for 'orders_total': tags .*") as info:
        orders.increment(**tags)
    assert problem in str(info.value)


def test_production_drops_bad_calls_counts_and_logs_once(production, caplog):
    orders = Counter("orders_total", "Orders.", tags=("status",), client=production)
    checkout = Histogram("checkout_seconds", "Checkout.", client=production)
    with (
        caplog.at_level(logging.WARNING, "statsd_instrument"),
        production.capture_lines(strict=None) as lines,
    ):
        orders.increment(state="paid")
        orders.increment(state="paid")
        orders.increment("many", status="paid")
        checkout.observe("slow")
        with checkout.time():  # a good call still works
            pass
        orders.labels(nope="x").increment()  # a bad series: calls on it do nothing
        with checkout.labels(nope="x").time():
            pass
        orders.increment(status="paid")
        invalid = production.stats["invalid_calls"]
    assert [line.split(":")[0] for line in lines] == ["checkout_seconds", "orders_total"]
    assert invalid == 6
    warnings = [r.getMessage() for r in caplog.records]
    assert len([w for w in warnings if "'orders_total'" in w]) == 1  # once per metric
    assert any("'checkout_seconds'" in w and "not a number" in w for w in warnings)


def test_declarations_refuse_bad_definitions_naming_the_field():
    with pytest.raises(ValueError, match="invalid metric name 'orders total'"):
        Counter("orders total", "Orders.")
    with pytest.raises(ValueError, match=r"name 'orders\.total' is not a Prometheus metric name"):
        Counter("orders.total", "Orders.")
    assert Counter("shop.orders", "Orders.", prometheus_name="orders_total").prometheus_name == "orders_total"
    with pytest.raises(ValueError, match="reserved tag key 'le'"):
        Histogram("t_seconds", "T.", tags=("le",))
    with pytest.raises(ValueError, match="help must be a non-empty one-line str"):
        Gauge("g", "")
    with pytest.raises(ValueError, match="buckets must be sorted and distinct"):
        Histogram("t_seconds", "T.", buckets=(1, 0.5))
    with pytest.raises(ValueError, match=r"buckets must be finite numbers \(\+Inf is implied\)"):
        Histogram("t_seconds", "T.", buckets=(1, float("inf")))
    with pytest.raises(ValueError, match="quantiles must be in"):
        Summary("t_seconds", "T.", quantiles=((1.5, 0.1),))
    with pytest.raises(ValueError, match="tag keys repeat"):
        Counter("a_total", "A.", tags=("k", "k"))
    with pytest.raises(TypeError, match="not the str 'status'"):
        Counter("a_total", "A.", tags="status")
    with pytest.raises(ValueError, match=r"initial .* does not have the declared keys"):
        Counter("a_total", "A.", tags=("status",), initial=[{"state": "x"}])
    with pytest.raises(ValueError, match="ttl_s must be a positive number"):
        Counter("a_total", "A.", ttl_s=0)


def test_a_series_is_prepared_once_per_tag_combination_and_the_cache_is_bounded(client, monkeypatch, caplog):
    monkeypatch.setattr(metrics, "MAX_SERIES", 3)
    hits = Counter("hits_total", "Hits.", tags=("route",), client=client)
    with client.capture_lines() as lines, caplog.at_level(logging.WARNING, "statsd_instrument"):
        for i in range(5):
            hits.increment(route=f"/r{i}")
        hits.increment(route="/r0")
        hits.increment(route=["unhashable"])  # formatted, never cached
    assert lines[-2:] == ["hits_total:1|c|#route:/r0", "hits_total:1|c|#route:['unhashable']"]
    assert len(hits._series) + len(hits._typed) == 3
    assert hits.labels(route="/r0") is hits.labels(route="/r0")
    assert sum("more than 3 tag-value combinations" in r.getMessage() for r in caplog.records) == 1


def test_equal_values_of_other_types_are_not_confused_by_the_cache(client):
    flags = Counter("flags_total", "Flags.", tags=("on",), client=client)
    with client.capture_lines() as lines:
        flags.increment(on="1")
        flags.increment(on=1)
        flags.increment(on=True)
        flags.increment(on=1.5)
    assert lines == [f"flags_total:1|c|#on:{v}" for v in ("1", "1", "True", "1.5")]


def test_prepared_lines_follow_a_reconfigured_client_and_capture_mode():
    c = Client(protocol="null", strict=True)
    jobs = Counter("jobs_total", "Jobs.", tags=("queue",), client=c)
    paid = jobs.labels(queue="mail")
    with c.capture_lines() as before:
        paid.increment()
    c.configure(protocol="null", strict=True, prefix="shop", constant_tags=["env:dev"])
    with c.capture_lines() as after:
        paid.increment()
        jobs.increment(queue="mail")
    assert before == ["jobs_total:1|c|#queue:mail"]
    assert after == ["shop.jobs_total:1|c|#env:dev,queue:mail"] * 2
    c.close()


def test_time_is_a_context_manager_and_a_decorator_for_sync_and_async(client):
    checkout = Histogram("checkout_seconds", "Checkout.", tags=("step",), buckets=(0.1, 1), client=client)

    @checkout.time(step="pay")
    def pay(x):
        return x * 2

    @checkout.time(step="ship")
    async def ship():
        return "shipped"

    with client.capture_lines() as lines:
        with checkout.time(step="pack"):
            pass
        assert pay(21) == 42
        assert asyncio.run(ship()) == "shipped"
        with pytest.raises(ZeroDivisionError), checkout.time(step="pack"):
            1 / 0  # noqa: B018 - timed and re-raised
    assert [line.split("|#")[1] for line in lines] == ["step:pack", "step:pay", "step:ship", "step:pack"]
    assert all(line.split("|")[1] == "ms" and float(line.split(":")[1].split("|")[0]) >= 0 for line in lines)


def test_zero_lines_cover_known_values_initial_combinations_and_tagless_counters(client):
    both = Counter("a_total", "A.", tags={"x": ("1", "2"), "y": ("z",)}, client=client)
    initial = Counter(
        "b_total", "B.", tags=("code",), initial=[{"code": 200}, {"code": "500"}], client=client
    )
    tagless = Counter("c_total", "C.", client=client)
    unknown = Counter("d_total", "D.", tags=("code",), client=client)
    assert both.zero_lines() == ["a_total:0|c|#x:1,y:z", "a_total:0|c|#x:2,y:z"]
    assert initial.zero_lines() == ["b_total:0|c|#code:200", "b_total:0|c|#code:500"]
    assert tagless.zero_lines() == ["c_total:0|c"]
    assert unknown.zero_lines() == []


def test_each_process_sends_the_zero_lines_before_its_first_line_once():
    collector = UdpCollector()
    c = Client(port=collector.port, strict=True)
    try:
        jobs = Counter("jobs_total", "Jobs.", tags={"queue": ("mail", "default")}, client=c)
        jobs.increment(queue="mail")
        jobs.increment(queue="mail")
        c.flush()
        pid = os.fork()
        if pid == 0:  # a child (as gunicorn forks): sends its own zero lines with its first line
            try:
                jobs.increment(queue="default")
                c.flush()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        lines = collector.wait_for_lines(6)
    finally:
        c.close()
        collector.close()
    zeros = ["jobs_total:0|c|#queue:mail", "jobs_total:0|c|#queue:default"]
    parent = ["jobs_total:2|c|#queue:mail"]  # the two increments of one flush window, merged
    assert sorted(lines) == sorted(zeros * 2 + parent + ["jobs_total:1|c|#queue:default"])
    assert lines[:3] == [*zeros, *parent]  # the first datagram of the parent: its zero lines first


def test_a_declaration_after_the_first_line_is_zero_started_too(udp_collector):
    c = Client(port=udp_collector.port, strict=True)
    c.increment("early_total")
    c.flush()
    late = Counter("late_total", "Late.", client=c)  # buffered now: this process sent its start lines
    c.increment("early_total")
    late.increment()
    c.close()
    lines = udp_collector.wait_for_lines(4)
    assert lines == ["early_total:1|c", "late_total:0|c", "early_total:1|c", "late_total:1|c"]


def test_zero_lines_are_sent_again_when_sends_succeed_after_failing(tmp_path):
    path = str(tmp_path / "statsd.sock")
    c = Client(socket_path=path, strict=True)
    jobs = Counter("jobs_total", "Jobs.", tags={"queue": ("mail",)}, client=c)
    try:
        jobs.increment(queue="mail")
        c.flush()  # nobody listening: dropped, counted
        assert c.stats["send_errors"] == 1 and c.stats["dropped_lines"] == 2
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(path)
        receiver.settimeout(5)
        jobs.increment(queue="mail")
        c.flush()
        first = receiver.recv(65536).decode().split("\n")
        jobs.increment(queue="mail")
        c.flush()
        second = receiver.recv(65536).decode().split("\n")
    finally:
        c.close()
    # the exporter is back: zero start again, in front of the first datagram it receives
    assert first == ["jobs_total:0|c|#queue:mail", "jobs_total:1|c|#queue:mail"]
    assert second == ["jobs_total:1|c|#queue:mail"]  # once only: the send succeeded
    receiver.close()


def test_capture_mode_sends_no_zero_lines_and_assert_emitted_takes_declarations():
    c = Client(protocol="null", strict=True, prefix="shop")
    orders = Counter("orders_total", "Orders.", tags={"status": ("paid", "failed")}, client=c)
    checkout = Histogram("checkout_seconds", "Checkout.", tags=("step",), client=c)
    with capture(c) as cap:
        orders.increment(status="paid")
        checkout.observe(0.5, step="pay")
    assert cap.records == [
        Record("shop.orders_total", "c", 1.0, {"status": "paid"}, 1.0),
        Record("shop.checkout_seconds", "ms", 500.0, {"step": "pay"}, 1.0),
    ]
    cap.assert_emitted(orders, status="paid", times=1)
    cap.assert_emitted(checkout, step="pay", value=500)
    cap.assert_not_emitted(orders, status="failed")
    assert cap.total(orders, status="paid") == 1.0
    with pytest.raises(AssertionError, match=r"no record named 'shop\.orders_total' .*'status': 'failed'"):
        cap.assert_emitted(orders, status="failed")
    c.close()


def test_the_module_level_client_is_the_default_and_the_fixture_sees_declarations(statsd_capture):
    orders = Counter("fixture_orders_total", "Orders.", tags=("status",))
    orders.increment(status="paid")
    statsd_capture.assert_emitted(orders, status="paid")


def test_tag_keys_that_cannot_be_parameters_take_the_generic_call(client):
    odd = Counter("odd_total", "Odd keys.", tags=("class", "value", "_hidden"), client=client)
    plain = Counter("plain_total", "Plain keys.", tags=("kind",), client=client)
    assert "kind=" in str(inspect.signature(plain.increment))  # generated: the keys are parameters
    assert "class" not in str(inspect.signature(odd.increment))  # the class's method: **tags
    with client.capture_lines() as lines:
        odd.increment(2, **{"class": "a", "value": "b", "_hidden": "c"})
        plain.increment(kind="x")
    assert lines == ["odd_total:2|c|#class:a,value:b,_hidden:c", "plain_total:1|c|#kind:x"]


def test_a_declared_counter_merges_in_the_buffer_and_follows_a_reconfigured_client():
    c = Client(protocol="null", strict=True, flush_interval_s=60)
    try:
        jobs = Counter("jobs_total", "Jobs.", tags=("queue",), client=c)
        mail = jobs.labels(queue="mail")
        for _ in range(3):
            jobs.increment(queue="mail")
        mail.increment(2)
        jobs.increment(1.5, queue="mail")  # not an int: its own line, as the client's call sends it
        assert c._transport.pending_lines() == ["jobs_total:1.5|c|#queue:mail", "jobs_total:5|c|#queue:mail"]
        c.configure(
            protocol="null", strict=True, prefix="shop", constant_tags=["env:dev"], flush_interval_s=60
        )
        jobs.increment(queue="mail")
        mail.increment()
        jobs.increment(queue="mail")
        assert c._transport.pending_lines() == ["shop.jobs_total:3|c|#env:dev,queue:mail"]
        with c.capture_lines() as captured:
            jobs.increment(queue="mail")
            mail.increment(4)
        assert captured == [f"shop.jobs_total:{n}|c|#env:dev,queue:mail" for n in (1, 4)]
    finally:
        c.close()


def test_a_declared_timer_appends_seconds_to_its_series_list_and_follows_a_reconfigured_client():
    c = Client(protocol="null", strict=True, flush_interval_s=60)
    try:
        checkout = Histogram("checkout_seconds", "Checkout.", tags=("step",), buckets=(0.1, 1), client=c)
        pay = checkout.labels(step="pay")
        checkout.observe(0.0123456, step="pay")  # the long way: finds the series, remembers its list
        checkout.observe(0.25, step="pay")  # one lookup and one append
        pay.observe(1.5)
        checkout.observe(2, step="pay")  # an int, a negative float: formatted and buffered as send() does
        checkout.observe(-0.001, step="pay")
        with pytest.raises(ValueError, match="nan"):
            checkout.observe(
                float("nan"), step="pay"
            )  # strict: a bad value raises, as the client's call does
        key = ("checkout_seconds", "ms", "|#step:pay")
        assert checkout._lists == {"pay": c._transport._sample_lists[(None, key, 1000.0)]}
        assert c._transport.pending_lines() == ["checkout_seconds:2000:-1:12.346:250:1500|ms|#step:pay"]
        c.configure(protocol="null", strict=True, prefix="shop", flush_interval_s=60)
        assert checkout._lists == {}  # emptied by the client: no call goes to the old transport's list
        checkout.observe(0.5, step="pay")
        pay.observe(0.5)
        checkout.observe(0.5, step="pay")
        assert c._transport.pending_lines() == ["shop.checkout_seconds:500:500:500|ms|#step:pay"]
        with c.capture_lines() as captured:
            checkout.observe(0.001, step="pay")
            pay.observe(0.002)
        assert captured == [f"shop.checkout_seconds:{ms}|ms|#step:pay" for ms in (1, 2)]
    finally:
        c.close()


def test_a_declared_counters_list_cache_is_emptied_when_the_client_changes_generation():
    c = Client(protocol="null", strict=True, flush_interval_s=60)
    try:
        jobs = Counter("jobs_total", "Jobs.", tags=("queue",), client=c)
        jobs.increment(queue="mail")
        tally = c._transport._tallies[("jobs_total", "c", "|#queue:mail")]
        assert jobs._lists == {"mail": tally}
        jobs.increment(2, queue="mail")
        assert tally == [1, 2]
        with (
            c.capture_lines() as captured
        ):  # capture mode is a generation of its own (what was buffered is sent)
            assert jobs._lists == {}
            jobs.increment(queue="mail")
            jobs.increment(queue="mail")
        assert captured == ["jobs_total:1|c|#queue:mail"] * 2 and tally == []
        jobs.increment(queue="mail")  # back: the list is remembered again
        jobs.increment(3, queue="mail")
        assert jobs._lists == {"mail": tally} and tally == [3]  # the first call after a change: buffered
        assert c._transport.pending_lines() == ["jobs_total:4|c|#queue:mail"]
    finally:
        c.close()


def test_the_list_cache_holds_a_dict_per_tag_key_and_misses_values_of_other_types():
    c = Client(protocol="null", strict=True, flush_interval_s=60)
    try:
        runs = Counter("runs_total", "Runs.", client=c)
        hits = Counter("hits_total", "Hits.", tags=("route", "code"), client=c)
        for _ in range(2):
            runs.increment()
            hits.increment(route="/a", code="200")
            hits.increment(route="/a", code=200)  # an int: equal to no str key, its own series
            hits.increment(route="/a", code=True)
        tallies = c._transport._tallies
        assert runs._lists == {(): tallies[("runs_total", "c", "")]}
        assert hits._lists == {"/a": {"200": tallies[("hits_total", "c", "|#route:/a,code:200")]}}
        assert c._transport.pending_lines() == [
            "runs_total:0|c",  # its zero start
            "runs_total:2|c",
            "hits_total:4|c|#route:/a,code:200",
            "hits_total:2|c|#route:/a,code:True",
        ]
    finally:
        c.close()


async def test_count_exceptions_counts_the_given_classes_leaving_a_block_or_call_and_reraises(client):
    failures = Counter("failures_total", "Failures.", tags=("step",), client=client)

    @failures.count_exceptions((KeyError, ValueError), step="sync")
    def sync(error):
        if error is not None:
            raise error

    @failures.count_exceptions(step="async")  # any Exception
    async def coro(error):
        if error is not None:
            raise error

    with client.capture_lines() as lines:
        sync(None)
        for error in (KeyError("k"), ValueError("v"), ZeroDivisionError()):
            with pytest.raises(type(error)) as raised:
                sync(error)
            assert raised.value is error  # re-raised unchanged
        await coro(None)
        with pytest.raises(RuntimeError):
            await coro(RuntimeError())
        with pytest.raises(KeyboardInterrupt):  # not an Exception: not counted
            await coro(KeyboardInterrupt())
        with pytest.raises(OSError), failures.count_exceptions(OSError, step="block"):
            raise FileNotFoundError
    assert lines == [
        "failures_total:1|c|#step:sync",
        "failures_total:1|c|#step:sync",
        "failures_total:1|c|#step:async",
        "failures_total:1|c|#step:block",
    ]
    with pytest.raises(
        TypeError, match="failures_total: count_exceptions: expected exception classes, got 'x'"
    ):
        failures.count_exceptions("x", step="sync")
    with pytest.raises(ValueError, match="tags \\['stage'\\] given"):  # strict: bad tags raise
        failures.count_exceptions(stage="sync")


def test_count_exceptions_with_bad_tags_in_production_counts_nothing_and_never_raises(production):
    failures = Counter("prod_failures_total", "Failures.", tags=("step",), client=production)
    with pytest.raises(KeyError), failures.count_exceptions(KeyError, stage="oops"):
        raise KeyError("the app's own exception goes on")
    assert production.stats["invalid_calls"] == 1


# -- the lock-free lists against the buffer calls: the same totals whatever the order of calls and changes --

_VALUES = st.sampled_from([0.5, -2.5, 3, 1e-7, 12.0, 0.0])
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("inc"), st.sampled_from(["a", "b"]), st.sampled_from([0, 1, 3, 2.5, -1])),
        st.tuples(
            st.just("observe"), st.sampled_from(["a", "b"]), st.sampled_from([0.0, 0.001, 0.25, 2, -0.5])
        ),
        # the client's calls: a lowercase q as a tag list, an uppercase one as a dict (the same series)
        st.tuples(st.just("timing"), st.sampled_from("abAB"), st.sampled_from([0.0, 12.5, 7, -1.0])),
        st.tuples(st.just("client_inc"), st.sampled_from("abAB"), st.sampled_from([0, 1, 3, 2.5, -1])),
        st.tuples(st.just("label_inc"), st.sampled_from(["a", "b"]), st.sampled_from([1, 4])),
        st.tuples(st.sampled_from(["histogram", "distribution", "sizes"]), st.sampled_from("abAB"), _VALUES),
        st.tuples(st.just("drain"), st.just(""), st.just(0)),
        st.tuples(st.just("configure"), st.just(""), st.just(0)),
        st.tuples(st.just("restyle"), st.sampled_from(["", "p1", "p2"]), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(_OPS)
def test_lists_and_buffer_calls_send_the_same_totals_and_samples(ops):
    c = Client(protocol="null", strict=True, flush_interval_s=60)
    sent: list[str] = []
    try:
        jobs = Counter("fz_jobs_total", "Jobs.", tags=("q",), client=c)
        wait = Histogram("fz_wait_seconds", "Wait.", tags=("q",), client=c)
        sizes = Histogram("fz_sizes_bytes", "Sizes.", tags=("q",), timer=False, client=c)
        counts: dict = {}
        samples: dict = {}
        prefix = ""
        for op, q, value in ops:
            tags: Any = {"q": q.lower()} if q.isupper() else [f"q:{q}"]
            q = q.lower()
            if op == "inc":
                jobs.increment(value, q=q)
            elif op == "label_inc":
                jobs.labels(q=q).increment(value)
            elif op == "observe":
                wait.observe(value, q=q)
            elif op == "timing":
                c.timing("fz_timing_ms", value, tags=tags)
            elif op == "client_inc":
                c.increment("fz_client_total", value, tags=tags)
            elif op == "histogram":
                c.histogram("fz_histogram", value, tags=tags)
            elif op == "distribution":
                c.distribution("fz_distribution", value, tags=tags)
            elif op == "sizes":
                sizes.observe(value, q=q)
            elif op == "drain":
                sent += c._transport.pending_lines()
                c._transport._drain()
                continue
            elif op == "configure":  # a new transport: the lists must follow it
                sent += c._transport.pending_lines()
                c.configure(protocol="null", strict=True, flush_interval_s=60, prefix=prefix or None)
                continue
            else:  # new names on the same transport (DogStatsd's namespace): the old lists must not be used
                prefix = q
                c._restyle(dataclasses.replace(c._settings, prefix=prefix))
                continue
            if op in ("inc", "label_inc", "client_inc"):
                name = "fz_client_total" if op == "client_inc" else "fz_jobs_total"
                counts[prefix, name, q] = counts.get((prefix, name, q), 0) + value
            elif op in ("observe", "timing"):
                ms = value * 1000.0 if op == "observe" else value
                samples.setdefault((prefix, op, q), []).append(format_ms(ms))
            else:
                samples.setdefault((prefix, op, q), []).append(format_number(value))
        sent += c._transport.pending_lines()
    finally:
        c.close()
    got_counts: dict = {}
    got_samples: dict = {}
    for line in sent:
        head, kind, tags = line.split("|")
        name, _, text = head.partition(":")
        prefix, _, name = name.rpartition(".")
        q = tags.rsplit(":", 1)[1]
        if kind == "c":
            got_counts[prefix, name, q] = got_counts.get((prefix, name, q), 0) + float(text)
        else:
            op = {"fz_wait_seconds": "observe", "fz_sizes_bytes": "sizes", "fz_timing_ms": "timing"}.get(
                name, name[3:]
            )
            got_samples.setdefault((prefix, op, q), []).extend(text.split(":"))
    assert got_counts == {key: n for key, n in counts.items() if n or key in got_counts}
    assert {k: sorted(v) for k, v in got_samples.items()} == {k: sorted(v) for k, v in samples.items()}


async def test_track_inprogress_adds_one_while_a_block_or_call_runs_however_it_ends(client, monkeypatch):
    busy = Gauge("busy", "Running.", tags=("kind",), client=client)

    @busy.track_inprogress(kind="sync")
    def work(fail):
        if fail:
            raise KeyError("x")

    @busy.track_inprogress(kind="async")
    async def coro():
        return 42

    @busy.track_inprogress(kind="gen")
    def items():
        yield 1
        yield 2

    with client.capture_lines() as lines:
        work(False)
        with pytest.raises(KeyError):
            work(True)
        assert await coro() == 42
        generator = items()
        assert lines == [
            f"busy:{d}|g|#kind:{k}"
            for k, d in [("sync", "+1"), ("sync", "-1")] * 2
            + [
                ("async", "+1"),
                ("async", "-1"),
            ]
        ]
        assert list(generator) == [1, 2]  # measured from its first item to its last
        with busy.track_inprogress(kind="block"):
            assert lines[-3:] == ["busy:+1|g|#kind:gen", "busy:-1|g|#kind:gen", "busy:+1|g|#kind:block"]
    assert lines[-1] == "busy:-1|g|#kind:block"
    monkeypatch.setattr(metrics.time, "time", lambda: 1700000000.5)
    with client.capture_lines() as lines:
        busy.set_to_current_time(kind="last_run")
    assert lines == ["busy:1700000000.5|g|#kind:last_run"]


def test_track_inprogress_from_several_threads_ends_at_zero_at_the_exporter(udp_collector):
    c = Client(port=udp_collector.port, flush_interval_s=0.01)
    busy = Gauge("mt_busy", "Running.", client=c)
    started = threading.Barrier(4)

    def work() -> None:
        with busy.track_inprogress():
            started.wait(5)  # all four inside at once

    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
    finally:
        c.close()  # sends what is left
    sent = c.stats["sent_datagrams"]
    deadline = time.monotonic() + 10
    while len(udp_collector.datagrams) < sent and time.monotonic() < deadline:
        time.sleep(0.01)
    assert c.stats["sent_lines"] == 8 and c.stats["dropped_lines"] == 0  # a call each way per thread
    total = 0
    for line in udp_collector.lines():
        text = line.split(":")[1].split("|")[0]
        total = total + int(text) if text[0] in "+-" else int(text)
    assert total == 0
