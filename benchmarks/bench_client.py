"""Cost of one call with 3 tags: ``increment``, then timings (``timing``, a declared histogram's ``observe``,
a function decorated with ``timed``): statsd_instrument (ad hoc and declared) vs datadog's DogStatsd() vs
statsd.StatsClient.

Tags are written inline, as real code does: a new list literal per call. Every client sends to the same
local UDP socket, drained by a separate process. Rounds are interleaved (each round times every client once,
in a rotating order) and the table reports per-client medians.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import warnings

TITLE = "Client: µs per call with 3 tags"
ROUNDS = 25
CALLS = 20_000
TAGS_DICT = {"status": "paid", "method": "GET", "endpoint": "/orders/<id>"}

_DRAIN = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
while True:
    s.recv(65536)
"""


def _clients(port: int) -> dict:
    from datadog import DogStatsd
    from statsd import StatsClient

    from statsd_instrument import Client, Counter, Gauge, Histogram
    from statsd_instrument.datadog import DogStatsd as DropIn

    ours = Client(host="127.0.0.1", port=port, strict=False)
    drop_in = DropIn(host="127.0.0.1", port=port, strict=False)
    orders = Counter("orders_total", "Orders.", tags=tuple(TAGS_DICT), client=ours)
    paid = orders.labels(**TAGS_DICT)
    checkout = Histogram(
        "checkout_seconds", "Checkout.", tags=tuple(TAGS_DICT), buckets=(0.1, 1), client=ours
    )
    depth = Gauge("queue_depth", "Depth.", tags=tuple(TAGS_DICT), client=ours)

    # as users write @timed: a view decorated once, called in the loop (the body does nothing)
    @ours.timed("view_ms", tags=["status:paid", "method:GET", "endpoint:/orders/<id>"])
    def ours_view() -> None:
        pass

    prepared = ours.prepare("c", "orders_total", ["status:paid", "method:GET", "endpoint:/orders/<id>"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dog = DogStatsd(host="127.0.0.1", port=port)
    pystatsd = StatsClient("127.0.0.1", port)

    @dog.timed("view_ms", tags=["status:paid", "method:GET", "endpoint:/orders/<id>"])
    def dog_view() -> None:
        pass

    namespace = {
        "ours": ours,
        "drop_in": drop_in,
        "orders": orders,
        "paid": paid,
        "prepared": prepared,
        "dog": dog,
        "pystatsd": pystatsd,
        "TAGS_DICT": TAGS_DICT,
        "checkout": checkout,
        "depth": depth,
        "ours_view": ours_view,
        "dog_view": dog_view,
    }
    calls = {
        # as users write it: a new list literal per call
        "statsd_instrument (inline tag list)": (
            'ours.increment("orders_total", tags=["status:paid", "method:GET", "endpoint:/orders/<id>"])',
            ours,
        ),
        "statsd_instrument (tags dict)": ('ours.increment("orders_total", tags=TAGS_DICT)', ours),
        "statsd_instrument Client.prepare() line": ("prepared.send(1)", ours),
        "statsd_instrument declared Counter": (
            'orders.increment(status="paid", method="GET", endpoint="/orders/<id>")',
            ours,
        ),
        "statsd_instrument declared .labels() series": ("paid.increment()", ours),
        "datadog DogStatsd() default": (
            'dog.increment("orders_total", tags=["status:paid", "method:GET", "endpoint:/orders/<id>"])',
            dog,
        ),
        "statsd StatsClient (no tags: unsupported)": ('pystatsd.incr("orders_total")', pystatsd),
        "statsd_instrument.datadog DogStatsd (inline tags)": (
            'drop_in.increment("orders_total", tags=["status:paid", "method:GET", "endpoint:/o/<id>"])',
            drop_in,
        ),
        "datadog DogStatsd() (inline tags)": (
            'dog.increment("orders_total", tags=["status:paid", "method:GET", "endpoint:/o/<id>"])',
            dog,
        ),
        # timings: a float of ms, as a timer measures it
        "statsd_instrument timing (inline tag list)": (
            'ours.timing("view_ms", 12.5, tags=["status:paid", "method:GET", "endpoint:/orders/<id>"])',
            ours,
        ),
        "statsd_instrument declared Histogram.observe": (
            'checkout.observe(0.0125, status="paid", method="GET", endpoint="/orders/<id>")',
            ours,
        ),
        "statsd_instrument @timed function (tag list)": ("ours_view()", ours),
        "datadog DogStatsd() timing (inline tags)": (
            'dog.timing("view_ms", 12.5, tags=["status:paid", "method:GET", "endpoint:/orders/<id>"])',
            dog,
        ),
        "datadog DogStatsd() @timed function (tag list)": ("dog_view()", dog),
        # gauges: a set (the window's last value wins) and a delta (summed)
        "statsd_instrument gauge set (inline tag list)": (
            'ours.gauge("queue_depth", 7, tags=["status:paid", "method:GET", "endpoint:/orders/<id>"])',
            ours,
        ),
        "statsd_instrument declared Gauge.set": (
            'depth.set(7, status="paid", method="GET", endpoint="/orders/<id>")',
            ours,
        ),
        "statsd_instrument declared Gauge.inc": (
            'depth.inc(status="paid", method="GET", endpoint="/orders/<id>")',
            ours,
        ),
        "datadog DogStatsd() gauge (inline tags)": (
            'dog.gauge("queue_depth", 7, tags=["status:paid", "method:GET", "endpoint:/orders/<id>"])',
            dog,
        ),
    }
    return {name: (_loop(stmt, namespace), client) for name, (stmt, client) in calls.items()}


def _loop(statement: str, namespace: dict):
    """A function running ``statement`` n times, the call written in the loop as in user code (no wrapper
    function around it, unlike a lambda; the garbage collector stays on, unlike timeit)."""
    scope = dict(namespace)
    exec(f"def loop(n):\n    for _ in range(n):\n        {statement}\n", scope)
    return scope["loop"]


def _time_once(loop) -> float:
    start = time.perf_counter()
    loop(CALLS)
    return (time.perf_counter() - start) / CALLS * 1e6


#: What a declared counter's call is made of, each piece alone in the same timing loop (the floor of a call in
#: CPython on this machine: no call can cost less than the pieces it cannot do without).
_PIECES = {
    "the timing loop alone": "pass",
    "an empty function called as a declared counter is (3 tag keywords, **extra)": (
        'declared_shape(status="paid", method="GET", endpoint="/orders/<id>")'
    ),
    "look the values up in a dict per tag key": "lists[paid][get][endpoint]",
    "the same with one dict keyed by the tuple of values": "by_tuple[(paid, get, endpoint)]",
    "check the list, the fork flag and the value": "tally and flag[0] and one.__class__ is int and one >= 0",
    "append to the series' list": "tally.append(1)",
    "the fork check's system call if there were no flag: os.getpid()": "getpid() == pid",
    "take and release a lock (what the lists save)": "lock.acquire(); lock.release()",
}


def _floor_loops() -> tuple[dict, list]:
    """The timing loops of :data:`_PIECES`, and the list their append grows (to empty between rounds)."""
    import os
    import threading

    from statsd_instrument.transport import _process_flag

    def declared_shape(value: int = 1, /, *, status=None, method=None, endpoint=None, **_extra) -> None:
        pass

    paid, get, endpoint = "paid", "GET", "/orders/<id>"
    flag = _process_flag()
    flag[0] = 1
    tally = [1]
    namespace = {
        "declared_shape": declared_shape,
        "lists": {paid: {get: {endpoint: tally}}},
        "by_tuple": {(paid, get, endpoint): tally},
        "paid": paid,
        "get": get,
        "endpoint": endpoint,
        "tally": tally,
        "one": 1,
        "flag": flag,
        "getpid": os.getpid,
        "pid": os.getpid(),
        "lock": threading.Lock(),
    }
    return {name: _loop(stmt, namespace) for name, stmt in _PIECES.items()}, tally


#: the pieces a declared counter's call cannot do without (their sum: its floor)
_DECLARED_CALL = (
    "an empty function called as a declared counter is (3 tag keywords, **extra)",
    "look the values up in a dict per tag key",
    "check the list, the fork flag and the value",
    "append to the series' list",
)


def run() -> str:
    drain = subprocess.Popen([sys.executable, "-c", _DRAIN], stdout=subprocess.PIPE, text=True)
    try:
        port = int(drain.stdout.readline())
        clients = _clients(port)
        pieces, tally = _floor_loops()
        # the clients and the pieces in the same interleaved rounds: the machine's speed, which drifts on a
        # shared host, is the same for a call and its floor
        loops = {name: loop for name, (loop, _) in clients.items()} | pieces
        names = list(loops)
        samples: dict = {name: [] for name in names}
        for name in names:  # warm-up: caches, sockets, threads
            _time_once(loops[name])
        for r in range(ROUNDS):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                samples[name].append(_time_once(loops[name]))
            del tally[1:]  # the pieces' appends: the list stays short, as the flusher keeps it
        for _, client in clients.values():
            for method in ("close", "close_socket"):
                if hasattr(client, method):
                    getattr(client, method)()
                    break
    finally:
        drain.kill()
        drain.wait()
        drain.stdout.close()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    dog = medians["datadog DogStatsd() default"]
    rows = [
        "| client | median µs/call | min | max | vs DogStatsd |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in clients:
        values = samples[name]
        rows.append(
            f"| {name} | {medians[name]:.2f} | {min(values):.2f} | {max(values):.2f} | "
            f"{medians[name] / dog:.2f}x |"
        )
    base = medians["the timing loop alone"] * 1000
    floor_rows = ["| piece | median ns | minus the loop |", "|---|---:|---:|"]
    for name in pieces:
        floor_rows.append(f"| {name} | {medians[name] * 1000:.0f} | {medians[name] * 1000 - base:.0f} |")
    floor = sum(medians[name] * 1000 - base for name in _DECLARED_CALL)
    declared = medians["statsd_instrument declared Counter"] * 1000 - base
    return (
        f"{ROUNDS} interleaved rounds of {CALLS:,} calls each; all clients send to one local UDP socket "
        "drained by another process; tags are a list literal written in the call (a new list each time), and "
        "each call is written in the timing loop as user code writes it (no wrapper function around it). "
        "statsd_instrument merges the calls of each flush window and sends ≤1,432-byte datagrams (its sends "
        "are included); DogStatsd() and StatsClient send one datagram per call.\n\n"
        + "\n".join(rows)
        + "\n\nTargets: statsd_instrument with inline tags at most 1 µs per call and at most 0.25x "
        "DogStatsd's median; a declared metric's call at most 0.5 µs (statsd_instrument.metrics: a dict "
        'lookup per tag key and one append to the series\' list in the buffer). The "vs DogStatsd" column '
        "divides by DogStatsd's increment; compare the timing rows with DogStatsd's own.\n\n"
        "What a declared counter's call cannot do without, each piece alone in the same timing loop, timed "
        "in the same rounds as the clients above:\n\n"
        + "\n".join(floor_rows)
        + f"\n\nThe first four pieces add up to {floor:.0f} ns, the floor of a declared counter's call in "
        f"CPython here; the call itself took {declared:.0f} ns in the same rounds "
        f"({declared / floor:.2f}x its floor)."
    )


if __name__ == "__main__":
    print(run())
