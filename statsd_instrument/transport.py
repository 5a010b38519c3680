"""Per-process line buffer: batching into datagrams, flushing, fork detection and exit handling.

Lines are appended to a buffer and leave as one datagram (``b"\\n"``-joined) when the next line would not fit
(``max_datagram_bytes``), on ``flush()``, from a flusher thread at least every ``flush_interval_s`` / 2, and
at exit (``atexit``, which uwsgi and gunicorn workers run when they are recycled or stopped gracefully).

Fork safety, for servers that fork from C (uwsgi: Python's fork hooks do not run there):

* the buffer remembers its process id; the first call in a new process (one ``os.getpid()``) drops whatever
  the parent had buffered (the parent sends it), and makes new locks, a new socket and no thread;
* the flusher thread is started lazily by the first line in a process, never at import, and never in a uwsgi
  master (``uwsgi.worker_id() == 0``): there every line is sent at once. Before an ``os.fork()`` (gunicorn,
  multiprocessing) the buffer is flushed and the thread stopped, so no thread exists across the fork.

Exit: the flusher thread runs with every asynchronous signal blocked, so a stop signal is always handled by
another thread (the main one). uwsgi's worker stop handlers are C functions that call ``exit()`` in whichever
thread the kernel gives the signal to; in the flusher thread, Python's finalization would wait for the main
thread forever, and uwsgi would kill the worker after its reload mercy (60 s), losing its buffer. The
``atexit`` flush itself holds signals back, so a second stop signal cannot cut it short.

Send errors (exporter down, host unresolvable, full socket buffer) never raise: the lines are counted in
``stats.dropped_lines`` and logged at most once a minute on the ``statsd_instrument`` logger.

Telemetry: what a process dropped reaches Prometheus as the counter ``statsd_instrument_client_dropped``
(``statsd_instrument_client_dropped_total`` under the shipped mapping) with labels ``reason`` and
``service``, no per-process label. At most every ``telemetry_interval_s`` (10 s) a process sends the
increase since its last report, piggybacked on a send or a dropped call (so no thread is needed, and a uwsgi
master works too) and once more at exit. The report is its own datagram through the same socket, outside the
buffer, so that a failed report is known: its counts go out with the next one instead of being lost.
Reasons: ``send_failed`` (lines lost to send errors), the client's dropped calls: ``invalid_call``,
``reserved_name``, ``type_conflict``, ``series_collision`` (:mod:`statsd_instrument.guard`), and tags left
out of lines that were sent: ``bare_tag``, ``empty_value``, ``empty_key``
(:mod:`statsd_instrument.validation`); each is sent as 0 by the first report, so that ``increase()`` sees
the first drop.

>>> t = BufferedTransport(Settings(protocol="null"))
>>> t.add("a:1|c"); t.add("b:2|c"); t.flush()
>>> t.stats.as_dict()["sent_lines"]
2
>>> t.close()
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import weakref
from typing import Callable, Iterator, List

from statsd_instrument.config import Settings
from statsd_instrument.sinks import make_sink
from statsd_instrument.validation import DROP_REASONS

log = logging.getLogger("statsd_instrument")
WARN_EVERY_S = 60.0
_getpid = os.getpid
_monotonic = time.monotonic
#: The telemetry counter (see the module docstring) and the reasons every first report carries.
TELEMETRY_METRIC = "statsd_instrument_client_dropped"
TELEMETRY_REASONS = (
    "send_failed",
    "invalid_call",
    "reserved_name",
    "type_conflict",
    "series_collision",
    *DROP_REASONS,
)


class ClientStats:
    """Counters of one process's client, readable in-process (reset in a forked child).

    ``dropped_tags`` counts, per reason, tags that were not sent while their metric was (see
    :mod:`statsd_instrument.validation`).

    >>> ClientStats().as_dict()  # doctest: +NORMALIZE_WHITESPACE
    {'sent_datagrams': 0, 'sent_lines': 0, 'dropped_lines': 0, 'send_errors': 0, 'invalid_calls': 0,
     'dropped_tags': {'bare_tag': 0, 'empty_value': 0, 'empty_key': 0}}
    """

    __slots__ = (
        "dropped_lines",
        "dropped_tags",
        "invalid_calls",
        "invalid_reasons",
        "send_errors",
        "sent_datagrams",
        "sent_lines",
    )

    def __init__(self) -> None:
        self.sent_datagrams = 0
        self.sent_lines = 0
        self.dropped_lines = 0
        self.send_errors = 0
        self.invalid_calls = 0
        self.dropped_tags = dict.fromkeys(DROP_REASONS, 0)
        self.invalid_reasons: dict = {}  # reason (statsd_instrument.guard's, or invalid_call) -> calls

    def as_dict(self) -> dict:
        """The counters as a dict (a copy)."""
        out = {name: getattr(self, name) for name in ClientStats._order}
        out["dropped_tags"] = dict(self.dropped_tags)
        return out

    def __repr__(self) -> str:
        return f"ClientStats({self.as_dict()})"


ClientStats._order = ("sent_datagrams", "sent_lines", "dropped_lines", "send_errors", "invalid_calls")  # type: ignore[attr-defined]


def threads_allowed() -> bool:
    """Whether a flusher thread may run here; False means every line is sent at once.

    False in a uwsgi master (it forks workers from C later: a thread there could deadlock them), and in
    a uwsgi worker whose Python threads cannot run while it waits for requests (uwsgi before 2.0.27
    without ``--enable-threads`` or ``--threads``): an idle worker would never flush.

    >>> threads_allowed()
    True
    """
    uwsgi = sys.modules.get("uwsgi")
    if uwsgi is None:
        return True
    try:
        if in_uwsgi_master():
            return False
        return _uwsgi_runs_threads(uwsgi)
    except Exception:  # an old or partial uwsgi module: be safe
        return False


def in_uwsgi_master() -> bool:
    """Whether this is a uwsgi master process (it forks its workers from C later).

    >>> in_uwsgi_master()
    False
    """
    uwsgi = sys.modules.get("uwsgi")
    if uwsgi is None:
        return False
    try:
        return uwsgi.worker_id() == 0 and uwsgi.mule_id() == 0
    except Exception:  # an old or partial uwsgi module: be safe
        return True


def _uwsgi_runs_threads(uwsgi: object) -> bool:
    global _uwsgi_threads
    if _uwsgi_threads is None:
        opt = getattr(uwsgi, "opt", {}) or {}
        version = tuple(getattr(uwsgi, "version_info", (0, 0, 0))[:3])
        # uwsgi 2.0.27 made --enable-threads the default ("stub option this is true by default")
        _uwsgi_threads = version >= (2, 0, 27) or "enable-threads" in opt or "threads" in opt
        if not _uwsgi_threads:
            log.warning(
                "statsd_instrument: uwsgi %s runs no Python thread while a worker is idle (no "
                "--enable-threads): every line is sent at once. Add --enable-threads (or use uwsgi >= "
                "2.0.27) to batch.",
                ".".join(map(str, version)),
            )
    return _uwsgi_threads


_uwsgi_threads: bool | None = None


class BufferedTransport:
    """Batches lines into datagrams for one :class:`~statsd_instrument.config.Settings` (see module doc).

    >>> t = BufferedTransport(Settings(protocol="null", max_datagram_bytes=64))
    >>> for _ in range(10):
    ...     t.add("a.fairly.long.metric.name:1|c")
    >>> t.flush(); t.stats.sent_datagrams
    5
    >>> t.close()
    """

    def __init__(self, settings: Settings, sink_factory: Callable = make_sink) -> None:
        self.settings = settings
        self._make_sink = sink_factory
        self._limit = settings.max_datagram_bytes + 1  # a payload is sum(len(line) + 1) - 1 bytes
        self._interval_s = settings.flush_interval_s / 2
        self._closed = False
        self._last_warning = -WARN_EVERY_S
        #: lines sent before any other by each process, and again after a send that follows failed ones
        #: (the client's :meth:`~statsd_instrument.Client.add_start_lines`: zero start of declared counters)
        self.start_lines: Callable[[], List[str]] | None = None
        # no telemetry from a client that must send nothing (DD_DOGSTATSD_DISABLE, a configuration error)
        self._telemetry_s = 0.0 if settings.disabled else settings.telemetry_interval_s
        self.telemetry_tags = ""  # the client sets its constant tags with a service
        self._reset_process_state()
        _live.add(self)

    def _reset_process_state(self) -> None:
        self._pid = _getpid()
        self._lock = threading.Lock()  # only for starting the flusher thread
        self._sink_lock = threading.Lock()  # one sender at a time; held only around a send
        # Appends and pops of a deque are atomic: the hot path takes no lock, and every line is popped
        # (sent) exactly once whichever thread drains.
        self._buf: collections.deque[bytes] = collections.deque()
        self._size = 0  # about sum(len(line) + 1) over the buffer; only decides when to drain
        self._sink = None
        self._thread: threading.Thread | None = None
        self._token: object | None = None
        self._wake = threading.Event()
        self.stats = ClientStats()
        self._started = False  # this process's start lines are buffered
        self._failing = False  # the last send failed
        self._reported: dict = {}  # reason -> count the exporter was told about
        self._telemetry_at = _monotonic() + self._telemetry_s if self._telemetry_s else float("inf")

    def _forked(self) -> None:
        """First use in a child process: forget the parent's buffer, locks, socket and thread."""
        sink = self._sink
        self._reset_process_state()
        if sink is not None:
            try:
                sink.close()  # the child's copy of the parent's socket
            except OSError:
                pass

    def add(self, line: str) -> None:
        """Buffer one line (or lines that must travel together, joined by newlines)."""
        data = line.encode()
        if _getpid() != self._pid:
            self._forked()
        size = len(data) + 1
        if self._size + size > self._limit:
            self._drain()
        self._buf.append(data)
        self._size += size
        if self._thread is None:
            self._no_flusher()

    def add_flush(self, lines: str) -> None:
        """Send ``lines`` (one, or several joined by newlines) now, with whatever is buffered: the same as
        ``add`` of each line then ``flush()``, in one call. An integration ends a request with it.

        >>> t = BufferedTransport(Settings(protocol="null"))
        >>> t.add("view:1|c"); t.add_flush("a:1|c\\nb:2|ms")
        >>> t.stats.sent_datagrams, t.stats.sent_lines
        (1, 3)
        >>> t.close()
        """
        data = lines.encode()
        if _getpid() != self._pid:
            self._forked()
        if not self._started:
            self._start()
        if self._buf or len(data) >= self._limit:  # with buffered lines, or too big: as few datagrams as fit
            append = self._buf.append
            for line in data.split(b"\n"):
                append(line)
            self._drain()
        else:  # the common case: nothing buffered, one datagram straight away (no thread needed)
            self._send(data, data.count(b"\n") + 1)

    def flush(self) -> None:
        """Send everything buffered now, in as few datagrams as the size limit allows."""
        if _getpid() != self._pid:
            self._forked()
            return
        if self._buf:
            self._drain()

    def _drain(self) -> None:
        self._size = 0
        popleft = self._buf.popleft
        batch: List[bytes] = []
        batch_size = 0
        while True:
            try:
                data = popleft()
            except IndexError:
                break
            size = len(data) + 1
            if batch and batch_size + size > self._limit:
                self._send(b"\n".join(batch), len(batch))
                batch, batch_size = [], 0
            batch.append(data)
            batch_size += size
        if batch:
            self._send(b"\n".join(batch), len(batch))

    def _send(self, payload: bytes, n_lines: int) -> None:
        with self._sink_lock:
            try:
                if self._sink is None:
                    self._sink = self._make_sink(self.settings)
                self._sink.send(payload)
            except Exception as err:  # never raise into the app: count, warn now and then
                self.stats.dropped_lines += n_lines
                self.stats.send_errors += 1
                self._failing = True
                self._warn(err)
            else:
                self.stats.sent_datagrams += 1
                self.stats.sent_lines += n_lines
                if self._failing:  # reachable again, maybe a restarted exporter: start lines once more
                    self._failing = False
                    self._start()
        if self._telemetry_at <= _monotonic():
            self._report()

    def telemetry_due(self) -> None:
        """Send the telemetry report if it is due (the client calls it when it drops a call)."""
        if self._telemetry_at <= _monotonic() and self._pid == _getpid():
            self._report()

    def telemetry_counts(self) -> dict:
        """What this process dropped so far, per reason (see the module docstring).

        >>> t = BufferedTransport(Settings(protocol="null")); t.stats.invalid_reasons["type_conflict"] = 2
        >>> t.telemetry_counts()["type_conflict"], t.telemetry_counts()["send_failed"]
        (2, 0)
        """
        counts = dict.fromkeys(TELEMETRY_REASONS, 0)
        counts["send_failed"] = self.stats.dropped_lines
        counts.update(self.stats.invalid_reasons)
        counts.update(self.stats.dropped_tags)  # tags left out (their metric was sent)
        return counts

    def _report(self, final: bool = False) -> None:
        """Send the increase of each reason's count since the last report, in a datagram of its own."""
        with self._sink_lock:  # one report at a time: two threads finding it due must not both send it
            if not final and self._telemetry_at > _monotonic():
                return
            self._telemetry_at = _monotonic() + self._telemetry_s
            counts = self.telemetry_counts()
            reported = self._reported
            more_tags = "," + self.telemetry_tags[2:] if self.telemetry_tags else ""  # after reason, no |#
            lines = [
                f"{TELEMETRY_METRIC}:{count - reported.get(reason, 0)}|c|#reason:{reason}{more_tags}"
                for reason, count in counts.items()
                if count > reported.get(reason, 0) or (reason not in reported and not final)
            ]
            if not lines:
                return
            try:
                if self._sink is None:
                    self._sink = self._make_sink(self.settings)
                self._sink.send("\n".join(lines).encode())
            except Exception:  # not reported: these counts go out with the next report
                return
            reported.update(counts)

    def _warn(self, err: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            log.warning(
                "statsd_instrument: cannot send to %s (%s: %s); %d lines dropped so far in this process "
                "(next warning in %.0f s at the earliest)",
                self.settings.address(),
                type(err).__name__,
                err,
                self.stats.dropped_lines,
                WARN_EVERY_S,
            )

    def _start(self) -> None:
        """Buffer this process's start lines (not in a uwsgi master: its workers send their own)."""
        self._started = True  # a fork resets it: the child sends its own
        if self.start_lines is None or in_uwsgi_master():
            return
        try:
            lines = self.start_lines()
        except Exception:  # pragma: no cover - the client's provider never raises; belt and braces
            log.warning("statsd_instrument: building the start lines failed", exc_info=True)
            return
        for line in lines:
            data = line.encode()
            self._buf.append(data)
            self._size += len(data) + 1

    def restart_lines(self) -> None:
        """The client registered more start lines: if this process sent its own already, send them again."""
        if self._started and self._pid == _getpid():
            self._start()

    def _no_flusher(self) -> None:
        """Start the flusher thread, or send at once where no thread may run (a uwsgi master)."""
        if not self._started:
            self._start()
        if self._closed or not threads_allowed():
            self.flush()
            return
        with self._lock:
            if self._thread is not None:
                return
            token = self._token = object()
            self._thread = threading.Thread(
                target=self._run_flusher, args=(token,), name="statsd_instrument-flush", daemon=True
            )
        _start_without_signals(self._thread)

    def _run_flusher(self, token: object) -> None:
        pid, wake = self._pid, self._wake
        while True:
            wake.wait(self._interval_s)
            if self._token is not token or self._pid != pid:
                return
            try:
                self.flush()
            except Exception:  # pragma: no cover - flush itself never raises; belt and braces
                pass

    def stop_flusher(self) -> None:
        """Flush and stop the flusher thread (it restarts on the next line); used before ``os.fork()``."""
        if self._pid != _getpid():
            return
        self.flush()
        thread, self._token = self._thread, None
        if thread is not None:
            self._wake.set()
            if thread is not threading.current_thread():
                thread.join(2.0)
            self._wake = threading.Event()
            self._thread = None

    def close(self) -> None:
        """Flush, stop the thread and close the socket; later lines are sent one datagram at a time."""
        self._closed = True
        self.stop_flusher()
        if self._pid == _getpid():
            if self._telemetry_s:
                self._report(final=True)
            with self._sink_lock:
                if self._sink is not None:
                    self._sink.close()
                    self._sink = None
        _live.discard(self)


class CaptureTransport:
    """Keeps lines in memory instead of sending them (test mode).

    >>> t = CaptureTransport(Settings(protocol="null"))
    >>> t.add("a:1|c"); t.lines
    ['a:1|c']
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lines: List[str] = []
        self.stats = ClientStats()

    def add(self, line: str) -> None:
        """Record ``line``."""
        self.lines.append(line)
        self.stats.sent_lines += 1

    def add_flush(self, lines: str) -> None:
        """Record each of the newline-joined ``lines``, as ``add`` of each would.

        >>> t = CaptureTransport(Settings(protocol="null"))
        >>> t.add_flush("a:1|c\\nb:2|ms"); t.lines
        ['a:1|c', 'b:2|ms']
        """
        for line in lines.split("\n"):
            self.add(line)

    def flush(self) -> None:
        """Nothing to send."""

    def stop_flusher(self) -> None:
        """No thread."""

    def restart_lines(self) -> None:
        """No start lines in capture mode."""

    def close(self) -> None:
        """Nothing to close."""


# Signals a fault raises in the thread that caused it: blocking those would kill the process instead.
_FAULT_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS", "SIGABRT")


def _async_signals() -> frozenset:
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no per-thread signal masks
        return frozenset()
    faults = {getattr(signal, name) for name in _FAULT_SIGNALS if hasattr(signal, name)}
    return frozenset(signal.valid_signals()) - faults - {signal.SIGKILL, signal.SIGSTOP}  # never blockable


_ASYNC_SIGNALS = _async_signals()


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Within the block, asynchronous signals are held back from the calling thread (then delivered).

    >>> with _signals_blocked():
    ...     pass
    """
    if not _ASYNC_SIGNALS:
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start_without_signals(thread: threading.Thread) -> None:
    """Start ``thread`` with asynchronous signals blocked in it for good (it inherits its starter's mask).

    A process-directed signal then goes to another thread, so a server's C-level stop handler (uwsgi's calls
    ``exit()``) never runs in the flusher thread: Python finalizing from a non-main thread waits for the main
    thread forever. Blocking in the starting thread around ``start()`` leaves no window in which the new
    thread could take a signal; one arriving meanwhile is delivered when the starter's mask is restored.

    >>> t = threading.Thread(target=lambda: None)
    >>> _start_without_signals(t); t.join()
    """
    with _signals_blocked():
        thread.start()


_live: weakref.WeakSet[BufferedTransport] = weakref.WeakSet()


def _stop_all_before_fork() -> None:
    for transport in list(_live):
        transport.stop_flusher()


def _flush_all_at_exit() -> None:
    # A second stop signal must not cut the flush short: uwsgi's handlers call exit() again from inside
    # this one (a worker signalled directly and by its master at once); held back, it lands afterwards.
    with _signals_blocked():
        for transport in list(_live):
            try:
                transport.close()
            except Exception:  # pragma: no cover - exit must go on
                pass


atexit.register(_flush_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_stop_all_before_fork)
