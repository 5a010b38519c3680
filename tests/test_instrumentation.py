"""timed / counted as decorators (sync, async) and context managers; instrument() and uninstrument()
(statsd_instrument.instrumentation, on statsd_instrument.measure)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time

import pytest

from statsd_instrument import counted, instrument, measure, statsd, timed, uninstrument
from statsd_instrument.testing import capture


def test_timed_sends_float_milliseconds_measured_with_perf_counter():
    @timed("sleepy_seconds", tags=["step:pay"])
    def sleepy():
        time.sleep(0.02)

    with capture() as cap:
        sleepy()
    (record,) = cap.records
    assert record.type == "ms" and record.tags == {"step": "pay"}
    assert 20.0 <= record.value < 20_000  # milliseconds, never seconds-as-ms (0.02) nor rounded to 0


def test_timed_keeps_sub_millisecond_precision(monkeypatch):
    ticks = iter([100.0, 100.0123456])  # a 12.3456 ms block, on a clock this test controls
    monkeypatch.setattr(measure, "_perf_counter", lambda: next(ticks))
    with capture() as cap, timed("quick_seconds"):
        pass
    assert cap.lines == ["quick_seconds:12.346|ms"]


def test_timed_as_a_context_manager_and_nested():
    timer = timed("block_seconds")
    with capture() as cap, timer, timer:
        pass
    assert [r.name for r in cap.records] == ["block_seconds", "block_seconds"]


def test_one_timer_times_blocks_in_several_threads_at_once_each_its_own(monkeypatch):
    # each thread's clock: entering at 100 * n, leaving at 100 * n + n (n s); all enter before any leaves
    clock = threading.local()
    monkeypatch.setattr(measure, "_perf_counter", lambda: clock.ticks.pop(0))
    timer = timed("shared_seconds")
    inside = threading.Barrier(3)

    def work(n: int) -> None:
        clock.ticks = [100.0 * n, 100.0 * n + n]
        with timer:
            inside.wait(5)

    with capture() as cap:
        threads = [threading.Thread(target=work, args=(n,)) for n in (1, 2, 3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
    assert sorted(r.value for r in cap.records) == [1000, 2000, 3000]
    assert timer._starts == {}  # nothing left behind by threads that are done


async def test_timed_and_counted_work_on_coroutines():
    @counted("fetch_total", outcome=True)
    @timed("fetch_seconds")
    async def fetch(fail):
        await asyncio.sleep(0)
        if fail:
            raise KeyError("x")
        return 42

    with capture() as cap:
        assert await fetch(False) == 42
        with pytest.raises(KeyError):
            await fetch(True)
    assert inspect.iscoroutinefunction(fetch)
    assert [r.tags for r in cap.filter("fetch_total")] == [
        {"outcome": "success", "exception": "none"},
        {"outcome": "failure", "exception": "KeyError"},
    ]
    assert len(cap.filter("fetch_seconds", type="ms")) == 2


def test_timed_with_outcome_tags_failures_and_reraises():
    @timed("charge_seconds", tags={"provider": "x"}, outcome=True)
    def charge():
        raise TimeoutError

    with capture() as cap, pytest.raises(TimeoutError):
        charge()
    cap.assert_emitted(
        "charge_seconds", tags={"provider": "x", "outcome": "failure", "exception": "TimeoutError"}
    )


def test_statsd_timed_is_datadog_compatible_and_names_from_the_function():
    @statsd.timed(use_ms=True)
    def compute():
        return 1

    with capture() as cap:
        compute()
    cap.assert_emitted(f"{__name__}.compute", type="ms")


class Repository:
    def get(self, key):
        """Fetch one row."""
        return key * 2

    @classmethod
    def build(cls):
        return cls()

    @staticmethod
    def version():
        return 3


def test_instrument_wraps_methods_keeping_signature_and_docstring_and_uninstrument_restores():
    before = inspect.signature(Repository.get)
    instrument(Repository, "get", "repo_get_seconds")
    instrument(Repository, "build", "repo_build_total", kind="counted")
    instrument(Repository, "version", "repo_version_total", kind="counted", outcome=True)
    try:
        assert inspect.signature(Repository.get) == before
        assert Repository.get.__doc__ == "Fetch one row."
        with capture() as cap:
            assert Repository.build().get(2) == 4
            assert Repository.version() == 3
        assert [r.name for r in cap.records] == ["repo_build_total", "repo_get_seconds", "repo_version_total"]
        with pytest.raises(ValueError, match="already instrumented"):
            instrument(Repository, "get")
    finally:
        for attribute in ("get", "build", "version"):
            uninstrument(Repository, attribute)
    assert isinstance(Repository.__dict__["build"], classmethod)
    assert isinstance(Repository.__dict__["version"], staticmethod)
    with capture() as cap:
        Repository().get(1)
    assert cap.records == []
    with pytest.raises(ValueError, match="not instrumented"):
        uninstrument(Repository, "get")


def test_instrument_defaults_the_metric_name_to_module_and_qualname():
    instrument(Repository, "get")
    try:
        with capture() as cap:
            Repository().get(1)
    finally:
        uninstrument(Repository, "get")
    cap.assert_emitted(f"{__name__}.Repository.get", type="ms")


def test_uninstrumenting_an_inherited_method_restores_the_base_class_lookup():
    class Special(Repository):
        pass

    instrument(Special, "get", "special_get_seconds")
    try:
        with capture() as cap:
            Special().get(1)
            Repository().get(1)
        assert [r.name for r in cap.records] == ["special_get_seconds"]
    finally:
        uninstrument(Special, "get")
    assert "get" not in Special.__dict__ and Special.get is Repository.get


# -- every form of timed that datadog code and our users write ----------------------------------------------


def test_every_timed_form_decorates_flask_views_that_register_and_answer():
    import flask

    from statsd_instrument.datadog import statsd as dd_statsd

    app = flask.Flask(__name__)

    @app.route("/bare")
    @timed
    def bare():
        return "bare"

    @app.route("/empty")
    @timed()
    def empty():
        return "empty"

    @app.route("/named")
    @timed("named_view_seconds")
    def named():
        return "named"

    @app.route("/client")
    @statsd.timed("client_view_seconds", tags=["view:client"])
    def client_view():
        return "client"

    @app.route("/datadog")
    @dd_statsd.timed("datadog_view_seconds")
    def datadog_view():
        return "datadog"

    @app.route("/datadog-bare")
    @dd_statsd.timed
    def datadog_bare():
        return "datadog-bare"

    web = app.test_client()
    with capture() as cap, dd_statsd.capture_lines() as dd_lines:
        answers = [web.get(path).data.decode() for path in ("/bare", "/empty", "/named", "/client")]
        answers += [web.get(path).data.decode() for path in ("/datadog", "/datadog-bare")]
    assert answers == ["bare", "empty", "named", "client", "datadog", "datadog-bare"]
    assert set(app.view_functions) >= {
        "bare",
        "empty",
        "named",
        "client_view",
        "datadog_view",
        "datadog_bare",
    }
    assert [r.name for r in cap.records] == [
        f"{__name__}.bare",
        f"{__name__}.empty",
        "named_view_seconds",
        "client_view_seconds",
    ]
    assert all(r.type == "ms" for r in cap.records) and cap.records[3].tags == {"view": "client"}
    assert [line.split(":")[0] for line in dd_lines] == ["datadog_view_seconds", f"{__name__}.datadog_bare"]


def test_timed_on_methods_classmethods_staticmethods_and_bare_on_each():
    class Repo:
        @timed
        def get(self, key):
            return key

        @timed("repo_find_seconds")
        @classmethod
        def find(cls, key):
            return (cls.__name__, key)

        @timed
        @staticmethod
        def parse(text):
            return int(text)

    with capture() as cap:
        assert Repo().get(1) == 1 and Repo.find(2) == ("Repo", 2) and Repo.parse("3") == 3
    assert [r.name for r in cap.records] == [f"{__name__}.get", "repo_find_seconds", f"{__name__}.parse"]


def test_timed_generators_are_measured_over_their_whole_iteration(monkeypatch):

    ticks = iter(range(100))
    monkeypatch.setattr(measure, "_perf_counter", lambda: next(ticks))

    @timed("rows_seconds")
    def rows(n):
        for index in range(n):
            next(ticks)  # work per item: one tick
            yield index

    @timed
    async def pages(n):
        for index in range(n):
            next(ticks)
            yield index

    async def collect():
        return [page async for page in pages(2)]

    with capture() as cap:
        assert list(rows(3)) == [0, 1, 2]
        assert asyncio.run(collect()) == [0, 1]
    first, second = cap.records
    assert first.name == "rows_seconds" and first.value == 4000  # start, 3 items, end: 4 ticks = 4 s
    assert second.name == f"{__name__}.pages" and second.value == 3000
    assert inspect.isgeneratorfunction(rows) and inspect.isasyncgenfunction(pages)


def test_timed_context_manager_exposes_elapsed_and_needs_a_name():
    timer = timed("block_seconds")
    with capture(), timer:
        pass
    assert isinstance(timer.elapsed, float) and timer.elapsed >= 0
    with pytest.raises(TypeError, match="needs a metric name"), timed():
        pass
    with pytest.raises(TypeError), statsd.timed():
        pass


def test_the_package_name_instrument_is_the_function_and_the_module_has_its_own_name():
    import statsd_instrument
    import statsd_instrument.instrumentation as module

    assert callable(statsd_instrument.instrument) and statsd_instrument.instrument is module.instrument
    assert not hasattr(module, "__path__") and module.__name__ == "statsd_instrument.instrumentation"


def test_a_measuring_object_that_sends_needs_a_client():
    with pytest.raises(TypeError, match="Timed needs the client to send through"):
        measure.Timed("block_seconds")
    with pytest.raises(TypeError, match="Counted needs the client"):
        measure.Counted.of("jobs_total")


def test_a_timed_function_appends_its_seconds_to_the_series_list_as_timing_would_send_them(monkeypatch):
    from statsd_instrument import Client
    from statsd_instrument.datadog import DogStatsd

    c = Client(protocol="null", strict=True, flush_interval_s=60)
    ticks = iter(x * 0.25 for x in range(10_000))  # every call takes 0.25 s (exact in binary)
    monkeypatch.setattr(measure, "_perf_counter", lambda: next(ticks))
    try:

        @c.timed("view_ms", tags=["view:x"])
        def view():
            return "ok"

        assert [view() for _ in range(3)] == ["ok"] * 3
        durations = c._transport._sample_lists[(None, ("view_ms", "ms", "|#view:x"), 1000.0)]
        assert durations == [0.25, 0.25]  # the first call took timing() and found the list
        assert c._transport.pending_lines() == ["view_ms:250:250:250|ms|#view:x"]
        with c.capture_lines() as lines:  # capture mode: every call is the client's call again
            view()
            view()
        assert lines == ["view_ms:250|ms|#view:x"] * 2
        view()
        assert c._transport.pending_lines() == ["view_ms:250|ms|#view:x"]
    finally:
        c.close()
    sampled = DogStatsd(default_sample_rate=0.5, disable_telemetry=True)  # every call sampled: no list
    try:
        timer = sampled.timed("view_ms")
        assert sampled.timer_list("view_ms", None)[1] is None
        with sampled.capture_lines() as lines:
            for _ in range(40):
                with timer:
                    pass
        assert 0 < len(lines) < 40 and all(line.endswith("|ms|@0.5") for line in lines)
    finally:
        sampled.close()
