"""Cost of one ``increment`` with 3 tags: statsd_instrument (ad hoc and declared) vs datadog's DogStatsd() vs
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

TITLE = "Client: µs per increment with 3 tags"
ROUNDS = 15
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

    from statsd_instrument import Client, Counter
    from statsd_instrument.datadog import DogStatsd as DropIn

    ours = Client(host="127.0.0.1", port=port, strict=False)
    drop_in = DropIn(host="127.0.0.1", port=port, strict=False)
    orders = Counter("orders_total", "Orders.", tags=tuple(TAGS_DICT), client=ours)
    paid = orders.labels(**TAGS_DICT)
    prepared = ours.prepare("c", "orders_total", ["status:paid", "method:GET", "endpoint:/orders/<id>"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dog = DogStatsd(host="127.0.0.1", port=port)
    pystatsd = StatsClient("127.0.0.1", port)
    namespace = {
        "ours": ours,
        "drop_in": drop_in,
        "orders": orders,
        "paid": paid,
        "prepared": prepared,
        "dog": dog,
        "pystatsd": pystatsd,
        "TAGS_DICT": TAGS_DICT,
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
    "build the tag-value tuple and look it up in a dict": "series_cache[(paid, get, endpoint)]",
    "call an empty method with two arguments (the buffer's entry point)": "empty.method(key, 1)",
    "the fork check: read the wipe-on-fork flag": "flag[0]",
    "the fork check it replaces: os.getpid() (a system call)": "getpid() == pid",
    "take and release the buffer's lock": "lock.acquire(); lock.release()",
    "add to the series' merged count and calls": "entry[0] += 1; entry[1] += 1",
}


def _floor() -> str:
    import os
    import threading

    from statsd_instrument.transport import _process_flag

    class Empty:
        def method(self, key: object, value: int) -> None:
            pass

    def declared_shape(value: int = 1, /, *, status=None, method=None, endpoint=None, **_extra) -> None:
        pass

    paid, get, endpoint = "paid", "GET", "/orders/<id>"
    flag = _process_flag()
    flag[0] = 1
    namespace = {
        "declared_shape": declared_shape,
        "series_cache": {(paid, get, endpoint): 1},
        "paid": paid,
        "get": get,
        "endpoint": endpoint,
        "empty": Empty(),
        "key": ("orders_total", "c", "|#status:paid"),
        "flag": flag,
        "getpid": os.getpid,
        "pid": os.getpid(),
        "lock": threading.Lock(),
        "entry": [0, 0],
    }
    loops = {name: _loop(stmt, namespace) for name, stmt in _PIECES.items()}
    samples: dict = {name: [] for name in loops}
    names = list(loops)
    for r in range(ROUNDS):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples[name].append(_time_once(loops[name]) * 1000)
    base = statistics.median(samples["the timing loop alone"])
    rows = ["| piece | median ns | minus the loop |", "|---|---:|---:|"]
    for name in names:
        median = statistics.median(samples[name])
        rows.append(f"| {name} | {median:.0f} | {median - base:.0f} |")
    return "\n".join(rows)


def run() -> str:
    drain = subprocess.Popen([sys.executable, "-c", _DRAIN], stdout=subprocess.PIPE, text=True)
    try:
        port = int(drain.stdout.readline())
        clients = _clients(port)
        names = list(clients)
        samples: dict = {name: [] for name in names}
        for name in names:  # warm-up: caches, sockets, threads
            _time_once(clients[name][0])
        for r in range(ROUNDS):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                samples[name].append(_time_once(clients[name][0]))
        for _, client in clients.values():
            for method in ("close", "close_socket"):
                if hasattr(client, method):
                    getattr(client, method)()
                    break
    finally:
        drain.kill()
        drain.wait()
        drain.stdout.close()
    floor = _floor()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    dog = medians["datadog DogStatsd() default"]
    rows = [
        "| client | median µs/call | min | max | vs DogStatsd |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in names:
        values = samples[name]
        rows.append(
            f"| {name} | {medians[name]:.2f} | {min(values):.2f} | {max(values):.2f} | "
            f"{medians[name] / dog:.2f}x |"
        )
    return (
        f"{ROUNDS} interleaved rounds of {CALLS:,} calls each; all clients send to one local UDP socket "
        "drained by another process; tags are a list literal written in the call (a new list each time), and "
        "each call is written in the timing loop as user code writes it (no wrapper function around it). "
        "statsd_instrument merges the calls of each flush window and sends ≤1,432-byte datagrams (its sends "
        "are included); DogStatsd() and StatsClient send one datagram per call.\n\n"
        + "\n".join(rows)
        + "\n\nTargets: statsd_instrument with inline tags at most 1 µs per call and at most 0.25x "
        "DogStatsd's median; a declared metric's call at most 0.5 µs (statsd_instrument.metrics: one dict "
        "lookup and one prepared line).\n\n"
        "What a declared counter's call cannot do without, each piece alone in the same loop, "
        f"{ROUNDS} interleaved rounds (the pieces' sum is the floor of such a call in CPython here):\n\n"
        + floor
    )


if __name__ == "__main__":
    print(run())
