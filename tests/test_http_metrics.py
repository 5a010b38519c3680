"""RequestRecorder: a label set seen before is sent from cached line text, as the metric calls would."""

from __future__ import annotations

import pytest

from statsd_instrument import Client, http_metrics
from statsd_instrument.http_metrics import RequestRecorder
from statsd_instrument.wire import format_ms


class CallByCallClient(Client):
    """A Client subclass with an overridden call: the recorder must use the metric calls for it."""

    def increment(self, *args, **kwargs):
        super().increment(*args, **kwargs)


REQUESTS = [
    ("GET", "/user/<int:id>", "200 OK", None),
    ("GET", "/user/<int:id>", "200 OK", None),
    ("PURGE", None, "404 NOT FOUND", None),
    ("GET", "/user/<int:id>", "200 OK", "ZeroDivisionError"),
    ("PURGE", None, "404 NOT FOUND", None),
    ("GET", "/user/<int:id>", "200 OK", None),
]


def _record(client: Client, elapsed_s: float, **options) -> list[str]:
    recorder = RequestRecorder(client, "shop", tags={"region": "eu"}, **options)
    with client.capture_lines() as lines:
        for method, endpoint, status, exception in REQUESTS:
            recorder.finished(method, endpoint, status, elapsed_s, exception)
    return lines


@pytest.mark.parametrize("options", [{}, {"in_flight": True, "version": "1.2"}])
@pytest.mark.parametrize("elapsed_s", [0.0123, 0.0000004, 2.5, 0.12345678])
def test_repeated_label_sets_send_exactly_the_lines_of_the_metric_calls(options, elapsed_s):
    fast = Client(protocol="null", prefix="web", constant_tags=["env:prod"])
    slow = CallByCallClient(protocol="null", prefix="web", constant_tags=["env:prod"])
    try:
        assert RequestRecorder(fast, "shop")._shapes_ok and not RequestRecorder(slow, "shop")._shapes_ok
        called: list[str] = []
        increment = fast.increment
        fast.increment = lambda name, **kw: (called.append(name), increment(name, **kw))  # type: ignore[method-assign]
        fast_lines, slow_lines = _record(fast, elapsed_s, **options), _record(slow, elapsed_s, **options)
    finally:
        fast.close()
        slow.close()
    assert fast_lines == slow_lines  # byte for byte, the latency value's formatting included
    # the metric calls ran only for a label set's first request and for the exception; the rest were cached
    assert called == ["request_count", "request_count", "request_count", "request_exceptions"]
    tags = "|#env:prod,service:shop,method:GET,endpoint:/user/<int:id>,status:200,region:eu"
    assert fast_lines[0] == "web.request_count:1|c" + tags
    assert fast_lines[1] == f"web.request_latency_seconds:{format_ms(elapsed_s * 1000)}|ms" + tags
    # the info gauge went out once (first request of the process), the in-flight -1 after every request
    assert sum(line.startswith("web.app_info:") for line in fast_lines) == (1 if options else 0)
    assert sum(line.startswith("web.request_in_flight:-1|g") for line in fast_lines) == (6 if options else 0)


def test_cached_lines_follow_a_reconfigured_client():
    client = Client(protocol="null", prefix="old")
    recorder = RequestRecorder(client, "shop")
    try:
        with client.capture_lines() as before:
            recorder.finished("GET", "/a", 200, 0.001)
            recorder.finished("GET", "/a", 200, 0.001)
        client.configure(protocol="null", prefix="new")
        with client.capture_lines() as after:
            recorder.finished("GET", "/a", 200, 0.001)
    finally:
        client.close()
    assert [line.split(":", 1)[0] for line in before] == [
        "old.request_count",
        "old.request_latency_seconds",
    ] * 2
    assert [line.split(":", 1)[0] for line in after] == ["new.request_count", "new.request_latency_seconds"]


def test_cached_lines_follow_new_constant_tags_and_a_capture_swap():
    client = Client(protocol="null", constant_tags=["env:dev"])
    recorder = RequestRecorder(client, "shop", in_flight=True)
    tags = "service:shop,method:GET,endpoint:/a,status:200"
    try:
        with client.capture_lines() as first:
            for _ in range(2):  # the second request is sent from the cached lines
                recorder.finished("GET", "/a", 200, 0.0015)
        client.configure(protocol="null", constant_tags=["env:prod"])
        with client.capture_lines() as second:
            recorder.finished("GET", "/a", 200, 0.0015)
        # a capture opened after the lines were cached gets them (not the transport they were made under)
        with client.capture_lines() as third:
            recorder.finished("GET", "/a", 200, 0.0025)
    finally:
        client.close()
    dev = [
        f"request_count:1|c|#env:dev,{tags}",
        f"request_latency_seconds:1.5|ms|#env:dev,{tags}",
        "request_in_flight:-1|g|#env:dev,service:shop",
    ]
    assert first == dev * 2
    assert second == [line.replace("env:dev", "env:prod") for line in dev]
    assert third == [line.replace("env:dev", "env:prod").replace(":1.5|", ":2.5|") for line in dev]


def test_an_empty_version_is_left_out_and_counted_and_an_empty_service_refused():
    client = Client(protocol="null", strict=False)
    recorder = RequestRecorder(client, "shop", version="")  # an empty version: the tag is left out
    try:
        for _ in range(3):
            recorder.finished("GET", "/a", 200, 0.001)
        assert client.stats["dropped_tags"]["empty_value"] == 1  # the info gauge went out once
        assert client.stats["invalid_calls"] == 0
    finally:
        client.close()
    with pytest.raises(ValueError, match="service=' ': expected a non-empty service name"):
        RequestRecorder(client, " ")


def test_info_gauge_is_sent_again_after_its_interval(monkeypatch):
    client = Client(protocol="null")
    recorder = RequestRecorder(client, "shop", version="2.0")
    clock = [1000.0]
    monkeypatch.setattr(http_metrics, "_monotonic", lambda: clock[0])
    try:
        with client.capture_lines() as lines:
            for step in (0.0, 1.0, 30.0, 29.0, 1.0):  # t = 1000, 1001, 1031, 1060, 1061
                clock[0] += step
                recorder.finished("GET", "/a", "200 OK", 0.001)
    finally:
        client.close()
    info = [i for i, line in enumerate(lines) if line.startswith("app_info:")]
    assert info == [2, 9]  # with the first request, and with the fourth (60 s later); never in between
    assert lines[2] == "app_info:1|g|#service:shop,version:2.0"


def test_requests_and_their_own_lines_leave_merged_when_the_window_closes(udp_collector):
    client = Client(host="127.0.0.1", port=udp_collector.port, flush_interval_s=0.05)
    recorder = RequestRecorder(client, "shop")
    try:
        for _ in range(3):
            client.increment("orders_total")  # a view's own metric, buffered
            recorder.finished("GET", "/order", "200 OK", 0.002)
        lines = udp_collector.wait_for_lines(3)  # no flush: the flusher ticks at the window
        assert [line.split("|", 1)[0] for line in lines] == [
            "orders_total:3",
            "request_count:3",
            "request_latency_seconds:2:2:2",
        ]
        assert client.stats["sent_datagrams"] == 1 and client.stats["sent_lines"] == 9
    finally:
        client.close()


def test_a_known_label_set_goes_into_the_transports_request_list_and_leaves_merged():
    client = Client(protocol="null", flush_interval_s=60)
    recorder = RequestRecorder(client, "shop")
    transport = client._transport
    tags = "|#service:shop,method:GET,endpoint:/a,status:200"
    try:
        for elapsed_s in (0.001, 0.0025, 0.004):
            recorder.finished("GET", "/a", "200 OK", elapsed_s)
        # the first request of a label set takes the metric calls; the next ones are one append each
        durations = recorder._shapes[("GET", "/a", "200 OK")][4]
        assert durations == [0.0025, 0.004]
        assert transport.pending_lines() == [
            f"request_count:3|c{tags}",
            f"request_latency_seconds:1:2.5:4|ms{tags}",
        ]
        assert durations == []  # folded into the buffer, not sent: flush() sends them
        transport.flush()
        assert client.stats["sent_lines"] == 6 and client.stats["sent_datagrams"] == 1
        recorder.finished("GET", "/a", "200 OK", 0.001)
        assert durations == [0.001]
        assert len(transport.pending_lines()) == 2  # only folded requests in the buffer: flush() sends them
        transport.flush()
        assert client.stats["sent_lines"] == 8 and transport.pending_lines() == []
        recorder.finished("GET", "/a", "200 OK", 0.001)
        transport._forked()  # a child process forgets the parent's requests, in the list the recorder holds
        assert (
            durations == []
            and transport.samples(*recorder._shapes[("GET", "/a", "200 OK")][1:3]) is durations
        )
        recorder.finished("GET", "/a", "200 OK", 0.002)
        recorder.finished("GET", "/a", "200 OK", -1.0)  # not a duration: left out, counted
        assert transport.pending_lines() == [
            f"request_count:1|c{tags}",
            f"request_latency_seconds:2|ms{tags}",
        ]
        assert client.stats["invalid_calls"] == 1
        client.configure(protocol="null", prefix="new")  # a new transport: the recorder follows it
        recorder.finished("GET", "/a", "200 OK", 0.001)
        recorder.finished("GET", "/a", "200 OK", 0.001)
        assert client._transport.pending_lines()[0] == f"new.request_count:2|c{tags}"
    finally:
        client.close()


@pytest.mark.parametrize("options", [{"in_flight": True}, {"version": "1.0"}])
def test_in_flight_changes_take_the_gauge_list_and_a_due_info_gauge_the_buffer_calls(options, monkeypatch):
    client = Client(protocol="null", flush_interval_s=60)
    recorder = RequestRecorder(client, "shop", **options)
    clock = [1000.0]
    monkeypatch.setattr(http_metrics, "_monotonic", lambda: clock[0])
    tags = "|#service:shop,method:GET,endpoint:/a,status:200"
    try:
        for _ in range(3):
            recorder.finished("GET", "/a", "200 OK", 0.001)
        client._transport.flush()
        clock[0] += 61  # the info gauge is due again: the next window's first request sends it
        for _ in range(2):
            recorder.finished("GET", "/a", "200 OK", 0.001)
        lines = client._transport.pending_lines()
    finally:
        client.close()
    assert lines[0] == f"request_count:2|c{tags}"
    if "in_flight" in options:
        # the request's duration list and the gauge's list of changes: the window's -1s merged in one line
        shape = recorder._shapes[("GET", "/a", "200 OK")]
        assert shape[4] is not None and shape[6] is not None
        assert lines[1:] == [f"request_latency_seconds:1:1|ms{tags}", "request_in_flight:-2|g|#service:shop"]
    else:
        assert lines[1:] == [
            f"request_latency_seconds:1:1|ms{tags}",
            "app_info:1|g|#service:shop,version:1.0",
        ]
