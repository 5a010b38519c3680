"""A bounded-rate HTTP traffic generator with a realistic mix for the example app.

Requests follow a deterministic plan (seeded), are paced to ``rate_per_s`` across a few threads, and every
answer is counted by status, so a test can compare what the app reported with what was sent.
"""

from __future__ import annotations

import collections
import http.client
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

#: the generator refuses rates above this: it shares the machine with the app, exporter and Prometheus
MAX_RATE_PER_S = 200.0


@dataclass(frozen=True)
class Route:
    """One kind of request in a mix; ``{n}`` in the path becomes a number, ``{word}`` a non-number."""

    weight: int
    method: str
    path: str


#: what the demo sends: mostly successes, the 500s of /test1/, 404s (unknown page, non-int user id), 405s.
#: No /health: the example app exempts it from metrics, so every request sent is counted exactly once.
DEFAULT_MIX: tuple[Route, ...] = (
    Route(58, "GET", "/test/"),
    Route(22, "GET", "/user/{n}"),
    Route(8, "GET", "/test1/"),
    Route(5, "GET", "/no-such-page/{n}"),
    Route(4, "POST", "/test/"),
    Route(3, "GET", "/user/{word}"),
)

#: /test1/ dominates: the error-budget alerts must fire
ERROR_HEAVY_MIX: tuple[Route, ...] = (Route(85, "GET", "/test1/"), Route(15, "GET", "/test/"))


def plan(mix: Sequence[Route], count: int, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` (method, path) pairs drawn from ``mix`` by weight, reproducibly.

    >>> plan(DEFAULT_MIX, 3, seed=1)
    [('GET', '/test/'), ('GET', '/test1/'), ('GET', '/user/484')]
    """
    rng = random.Random(seed)
    routes = rng.choices(list(mix), weights=[r.weight for r in mix], k=count)
    out = []
    for route in routes:
        path = route.path.replace("{n}", str(rng.randint(1, 1000)))
        path = path.replace("{word}", rng.choice(["me", "alice", "x1", "NaN"]))
        out.append((route.method, path))
    return out


@dataclass
class TrafficStats:
    """What was sent so far: answers by status, requests that got no answer, summed round-trip seconds."""

    answered: int = 0
    by_status: collections.Counter = field(default_factory=collections.Counter)
    no_answer: int = 0
    round_trip_s: float = 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.by_status.items() if status >= 500)


class Traffic:
    """Send ``mix`` to ``base_url`` at ``rate_per_s`` from a few threads, until stopped or ``total`` sent.

    >>> t = Traffic("http://127.0.0.1:9", rate_per_s=1000)
    Traceback (most recent call last):
    ...
    ValueError: rate_per_s=1000 is out of range: use 0 < rate_per_s <= 200
    """

    def __init__(
        self,
        base_url: str,
        rate_per_s: float = 50.0,
        threads: int = 4,
        mix: Sequence[Route] = DEFAULT_MIX,
        total: int | None = None,
        seed: int = 0,
        record: bool = False,
    ) -> None:
        if not 0 < rate_per_s <= MAX_RATE_PER_S:
            raise ValueError(
                f"rate_per_s={rate_per_s:g} is out of range: use 0 < rate_per_s <= {MAX_RATE_PER_S:g}"
            )
        hostport = base_url.split("://", 1)[-1].rstrip("/")
        self.host, _, port = hostport.partition(":")
        self.port = int(port or 80)
        self.rate_per_s = rate_per_s
        self.total = total
        self._plan = plan(mix, total if total is not None else 10_000, seed)
        self._next_index = 0
        self._next_send = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stats = TrafficStats()
        #: with ``record``: (monotonic time answered, round trip s, status or None, path) of every request
        self.answers: list[tuple[float, float, int | None, str]] | None = [] if record else None
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> Traffic:
        self._next_send = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def running(self) -> bool:
        """Whether requests are still being sent."""
        return any(thread.is_alive() for thread in self._threads)

    def stop(self) -> TrafficStats:
        """Stop sending (requests in flight finish) and return the final stats."""
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        return self.stats()

    def wait(self, timeout_s: float | None = None) -> TrafficStats:
        """Wait until ``total`` requests were sent (or stop() was called); returns the stats."""
        for thread in self._threads:
            thread.join(timeout_s)
        return self.stats()

    def stats(self) -> TrafficStats:
        with self._lock:
            s = self._stats
            return TrafficStats(s.answered, collections.Counter(s.by_status), s.no_answer, s.round_trip_s)

    def _take(self) -> tuple[str, str] | None:
        """Next request of the plan, paced; None when done."""
        with self._lock:
            if self._stop.is_set() or (self.total is not None and self._next_index >= self.total):
                return None
            request = self._plan[self._next_index % len(self._plan)]
            self._next_index += 1
            send_at = max(self._next_send, time.monotonic())
            self._next_send = send_at + 1.0 / self.rate_per_s
        delay = send_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return request

    def _run(self) -> None:
        while True:
            request = self._take()
            if request is None:
                return
            method, path = request
            started = time.perf_counter()
            status = self._send(method, path)
            elapsed = time.perf_counter() - started
            with self._lock:
                if self.answers is not None:
                    self.answers.append((time.monotonic(), elapsed, status, path))
                if status is None:
                    self._stats.no_answer += 1
                else:
                    self._stats.answered += 1
                    self._stats.by_status[status] += 1
                    self._stats.round_trip_s += elapsed

    def _send(self, method: str, path: str) -> int | None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=15)
        try:
            conn.request(method, path, headers={"Connection": "close"})
            response = conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()
