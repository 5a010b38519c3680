"""Per-process buffer: a bounded flush window, aggregation within it, fork detection and exit handling.

Metric calls wait in the buffer for at most one **flush window** (``flush_interval_s``, from
``STATSD_FLUSH_INTERVAL_MS``): they leave as ``b"\\n"``-joined datagrams when the flusher thread ticks (once
per window), when the next line would not fit one datagram (``max_datagram_bytes``), on ``flush()``, and at
exit (``atexit``, which uwsgi and gunicorn workers run when they are recycled or stopped gracefully). So a
busy web worker sends one datagram per window (or per full datagram) instead of one per request, and the
receiving exporter wakes and parses that much less. Only a process killed outright (``SIGKILL``, a crash)
loses what it buffered: at most one window's (or one datagram's) worth.

Within the window, calls that can be merged without changing any exported value are merged:

* counter increments by a non-negative int with the same name, tags and no sample rate are summed into one
  line (``hits:3|c|#k:v``): statsd_exporter adds them up the same way;
* samples of one timer/histogram/distribution series (same name, type and tags, no sample rate) travel as one
  multi-value line (``latency:1.5:2:7.25|ms|#k:v``, DogStatsD's extended aggregation), which statsd_exporter
  parses from v0.27.1; ``multi_value=False`` (``STATSD_MULTI_VALUE=0``) sends them as one line each for
  older exporters (which drop multi-value lines as malformed). A multi-value line is never longer than
  :data:`MAX_LINE_BYTES` (the exporter's TCP line limit).

* the calls of one gauge series (same name and tags) leave as the fewest lines that give the exporter the
  same final value: a **set** keeps only the window's last value (``depth:7|g``); **deltas** (``+N``/``-N``)
  are summed (``in_flight:+2|g``, ``+0`` included: the series stays fresh); deltas after the last set follow
  it in the same datagram (``depth:7|g`` then ``depth:+2|g``), deltas before it are dropped (the set
  overrides them at the exporter too). A negative set still goes as ``depth:0|g`` then ``depth:-3|g``
  (statsd_exporter reads a leading sign as a delta). Int deltas sum exactly; float deltas are summed in
  float64, as the exporter adds them, so the result may differ from adding them one by one in the last bit,
  less than the order in which several processes' datagrams arrive changes it anyway. A sampled gauge call
  that is kept merges with the others too (statsd_exporter ignores a gauge's sample rate); the series'
  lines then carry its ``|@rate``.

Everything else (sampled counters and samples, lines passed as text) is sent as written, in call order.

The cheapest calls take no lock: a counter series that a client has seen before has a **tally**, a list its
increments are appended to (``list.append`` is atomic), a timer, histogram or distribution series a
list of its values (:meth:`~BufferedTransport.samples`: durations in seconds for declared histograms and
the request recorder, in ms for ``timing``, values as they are for ``h`` and ``d``), and a gauge series a
list of its changes (:meth:`~BufferedTransport.gauges`: a delta, or a set as a 1-tuple); each drain folds
what the lists hold into the buffer (their lines come after the lines buffered directly) and removes
exactly what it took, so an append racing the drain waits for the next.
Every such append first checks that the list is not empty and the process flag (``here[0]``) reads 1;
otherwise it calls :meth:`~BufferedTransport.append_first`, which checks the process and the flusher thread.

Finished web requests take a shorter way in: per label set, the request recorder appends the duration to
a list (:meth:`~BufferedTransport.samples`; one ``list.append``, atomic under the GIL: no lock, no
``getpid()``, no formatting in the request), and the next drain folds each list into the buffer as above
(one count and one multi-value line, formatted in one go). Only the first request of a window (the list is
empty) or a long list (:data:`REQUESTS_MAX`) costs a call to :meth:`~BufferedTransport.append_first`,
which checks the process and the flusher thread.

Fork safety, for servers that fork from C (uwsgi: Python's fork hooks do not run there):

* the buffer remembers its process id; the first call in a new process drops whatever the parent had
  buffered (the parent sends it), and makes new locks, a new socket and no thread. A metric call notices the
  fork without a system call: it reads a flag in a page the kernel zero-fills in every child
  (``MADV_WIPEONFORK``, Linux 4.14+; elsewhere it compares ``os.getpid()``, about 0.2 µs), then one
  ``os.getpid()`` confirms it;
* the flusher thread is started lazily by the first line in a process, never at import, and never in a uwsgi
  master (``uwsgi.worker_id() == 0``): there every line is sent at once. Before an ``os.fork()`` (gunicorn,
  multiprocessing) the buffer is flushed and the thread stopped, so no thread exists across the fork.

Exit: the flusher thread runs with every asynchronous signal blocked, so a stop signal is always handled by
another thread (the main one). uwsgi's worker stop handlers are C functions that call ``exit()`` in whichever
thread the kernel gives the signal to; in the flusher thread, Python's finalization would wait for the main
thread forever, and uwsgi would kill the worker after its reload mercy (60 s), losing its buffer. The
``atexit`` flush itself holds signals back, so a second stop signal cannot cut it short.

Send errors (exporter down, host unresolvable, full socket buffer) never raise: the lines are counted in
``stats.dropped_lines`` and logged at most once a minute on the ``statsd_instrument`` logger. ``sent_lines``
and ``dropped_lines`` count the lines an unaggregated client would have sent (one per metric call). Over UDP
a datagram that reached no one is reported by the next send (``DatagramRefusedError``, see
:class:`~statsd_instrument.sinks.UdpSink`): its lines move from ``sent_lines`` to ``dropped_lines`` and the
refused send is made again. After a failed or refused send, the start lines (the zero start of
declared counters) go in front of every datagram until a send succeeds (after a refusal: and
:data:`RESTART_HOLD_S` passed without another), so a restarted exporter gets them first.

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
import contextlib
import itertools
import logging
import mmap
import os
import signal
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterable, Iterator, List, Tuple

from statsd_instrument.config import Settings
from statsd_instrument.sinks import DatagramRefusedError, Sink, make_sink
from statsd_instrument.validation import DROP_REASONS
from statsd_instrument.wire import format_ms_of, format_number, format_numbers

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
    _order = ("sent_datagrams", "sent_lines", "dropped_lines", "send_errors", "invalid_calls")  # as_dict()

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


def _process_flag() -> Any:
    """A one-byte flag (``flag[0]``) that keeps what this process sets and reads 0 in any child forked
    from it, however it forked (``os.fork()``, or C's ``fork()`` as uwsgi's, where no Python hook runs), and
    is read with no system call: a private anonymous page the kernel zero-fills in each child
    (``MADV_WIPEONFORK``, Linux 4.14+). Where there is no such page, a stand-in compares ``os.getpid()``
    on each read (a system call, about 0.2 µs).

    >>> flag = _process_flag(); flag[0] = 1; flag[0]
    1
    """
    if sys.platform.startswith("linux") and hasattr(mmap.mmap, "madvise"):
        try:
            page = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            page.madvise(getattr(mmap, "MADV_WIPEONFORK", 18))  # 18 in Linux's uapi headers
            return page
        except (AttributeError, OSError, ValueError):  # a kernel before 4.14: EINVAL
            pass
    return _PidFlag()


class _PidFlag:
    """:func:`_process_flag`'s stand-in: ``flag[0]`` is 1 in the process that set it, else 0 (one getpid).

    >>> flag = _PidFlag(); flag[0], (flag.__setitem__(0, 1), flag[0])[1]
    (0, 1)
    """

    __slots__ = ("pid",)

    def __init__(self) -> None:
        self.pid = 0

    def __getitem__(self, index: int) -> int:
        return 1 if _getpid() == self.pid else 0

    def __setitem__(self, index: int, value: int) -> None:
        self.pid = _getpid() if value else 0


#: finished requests a process holds before it drains them without waiting for the window (memory bound)
REQUESTS_MAX = 4096
#: series with a lock-free list per transport and kind (:meth:`BufferedTransport.tally`,
#: :meth:`BufferedTransport.samples`); more use the locked calls
TALLIES_MAX = 10_000

#: longest multi-value line built here (statsd_exporter closes a TCP connection on a line of 4096+ bytes)
MAX_LINE_BYTES = 4000

#: the buffer key of a series: (name with prefix, type, tag suffix ``|#...`` or "")
SeriesKey = Tuple[str, str, str]


class BufferedTransport:
    """Buffers metric calls for one :class:`~statsd_instrument.config.Settings` (see module doc).

    ``add(line)`` buffers a formatted line as is; ``count(key, n)`` and ``sample(key, text)`` buffer a counter
    increment and a sample of the series ``key`` (``(name, type, tag suffix)``), merged within the window.

    >>> t = BufferedTransport(Settings(protocol="null", max_datagram_bytes=64))
    >>> for _ in range(10):
    ...     t.add("a.fairly.long.metric.name:1|c")
    >>> t.flush(); t.stats.sent_datagrams
    5
    >>> for ms in ("1.5", "2", "7.25"):
    ...     t.count(("hits", "c", "|#k:v"), 1); t.sample(("latency", "ms", "|#k:v"), ms)
    >>> t.pending_lines()
    ['hits:3|c|#k:v', 'latency:1.5:2:7.25|ms|#k:v']
    >>> t.close()
    """

    def __init__(self, settings: Settings, sink_factory: Callable = make_sink) -> None:
        self.settings = settings
        self._make_sink = sink_factory
        self._limit = settings.max_datagram_bytes + 1  # a payload is sum(len(line) + 1) - 1 bytes
        self._line_limit = min(settings.max_datagram_bytes, MAX_LINE_BYTES)
        self._interval_s = settings.flush_interval_s
        self._multi_value = settings.multi_value
        self._closed = False
        self._last_warning = -WARN_EVERY_S
        #: lines sent before any other by each process, and again in front of the datagrams after failed ones
        #: (the client's :meth:`~statsd_instrument.Client.add_start_lines`: zero start of declared counters)
        self.start_lines: Callable[[], List[str]] | None = None
        # no telemetry from a client that must send nothing (DD_DOGSTATSD_DISABLE, a configuration error)
        self._telemetry_s = 0.0 if settings.disabled else settings.telemetry_interval_s
        self.telemetry_tags = ""  # the client sets its constant tags with a service
        # (count key or None, sample series key, scale) -> the values of that series (see samples()): finished
        # requests appended by the request recorder, observations of declared histograms, timings, histogram
        # and distribution values, without a lock (list.append is atomic), folded into the buffer by the next
        # drain (one count each, if a count key, and the samples); each list lives as long as the transport
        # (a fork empties it in place: its callers hold it)
        self._sample_lists: Dict[Tuple[SeriesKey | None, SeriesKey, float | None], List[float]] = {}
        # a counter series key -> its increments (non-negative ints), appended by the client's cheap paths
        # without a lock while the list is not empty and ``here`` reads 1 (see :meth:`tally`), folded into the
        # buffer by the next drain as the request lists are; a fork empties them in place (clients hold them)
        self._tallies: Dict[SeriesKey, List[int]] = {}
        # a gauge series key -> its changes in call order (a number: a delta; a 1-tuple: a set), appended as
        # the tallies are (see :meth:`gauges`) and folded by the next drain into one entry per series
        self._gauges: Dict[SeriesKey, List[Any]] = {}
        #: reads 1 (``here[0]``) in this process, 0 in a child forked from it (:func:`_process_flag`): the
        #: cheap paths' fork check, re-armed (the same object) by the child's first call on a checked path
        self.here = _process_flag()
        self._reset_process_state()
        _live.add(self)

    def _reset_process_state(self) -> None:
        self._pid = _getpid()
        self._here = self.here
        self._here[0] = 1
        for table in (self._sample_lists, self._tallies, self._gauges):
            for values in table.values():
                del values[:]
        self._lock = threading.Lock()  # guards the buffer; held for a few dict operations, never for a send
        self._start_lock = threading.Lock()  # only for starting the flusher thread
        self._sink_lock = threading.Lock()  # one drain at a time, datagrams in order
        # in call order: a series key -> [sum, calls] (a counter), its formatted values (samples) or [last set
        # or None, delta after it or None, calls, sample-rate suffix or ""] (a gauge); a number -> a line sent
        # as written
        self._entries: Dict[object, object] = {}
        self._seq = 0
        self._series = False  # a merged series (not only lines as written) is in the buffer
        self._size = 0  # about the bytes the buffer will take on the wire; > 0 whenever anything is buffered
        self._sink: Sink | None = None
        self._thread: threading.Thread | None = None
        self._token: object | None = None
        self._wake = threading.Event()
        self.stats = ClientStats()
        self._started = False  # this process's start lines are buffered
        self._failing = False  # sends failed or were refused: the start lines go in front of each datagram
        self._failing_until = 0.0  # ... until this monotonic time at least (see RESTART_HOLD_S)
        self._last_lines = 0  # metric calls in the last datagram sent (lost if it is refused later)
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

    # -- buffering ---------------------------------------------------------------------------------------

    # The common cases below are inline and take the lock with acquire()/release() (a ``with`` block costs
    # about twice as much): the series is already in this window (and, for a sample or a line, there is
    # room); a line also needs this process's flusher thread running (its first line starts it, in _put).

    def add(self, line: str) -> None:
        """Buffer one line as written (or lines that must travel together, joined by newlines)."""
        data = line.encode()
        if self._here[0] and self._thread is not None:
            lock = self._lock
            lock.acquire()
            try:
                size = self._size + len(data) + 1
                if size <= self._limit:
                    self._seq = seq = self._seq + 1
                    self._entries[seq] = data
                    self._size = size
                    return
            finally:
                lock.release()
        self._put(None, 0, None, "", data)

    def count(self, key: SeriesKey, value: int) -> None:
        """Buffer a counter increment by ``value`` (a non-negative int) of the series ``key``."""
        if self._here[0]:
            lock = self._lock
            lock.acquire()
            try:
                entry = self._entries.get(key)
                if entry is not None:
                    entry[0] += value  # type: ignore[index]
                    entry[1] += 1  # type: ignore[index]
                    return
            finally:
                lock.release()
        self._put(key, value, None, "", None)

    def sample(self, key: SeriesKey, text: str) -> None:
        """Buffer one sample (``text``, already formatted) of the timer/histogram/distribution ``key``."""
        if self._multi_value and self._here[0]:
            lock = self._lock
            lock.acquire()
            try:
                values = self._entries.get(key)
                size = self._size + len(text) + 1
                if values is not None and size <= self._limit:
                    values.append(text)  # type: ignore[attr-defined]
                    self._size = size
                    return
            finally:
                lock.release()
        self._put(None, 0, key, text, None)

    def add_request(self, count_key: SeriesKey, sample_key: SeriesKey, text: str, line: bytes | None) -> None:
        """A finished request in one call: ``count_key`` +1, the sample ``text`` of ``sample_key``, and the
        encoded ``line`` if not None (the in-flight gauge's -1). They enter the buffer together.

        >>> t = BufferedTransport(Settings(protocol="null"))
        >>> t.add_request(("n", "c", ""), ("t", "ms", ""), "2.5", None)
        >>> t.add_request(("n", "c", ""), ("t", "ms", ""), "4", b"g:-1|g"); t.pending_lines()
        ['n:2|c', 't:2.5:4|ms', 'g:-1|g']
        >>> t.close()
        """
        if line is None and self._multi_value and self._here[0]:
            lock = self._lock
            lock.acquire()
            try:
                entries = self._entries
                count = entries.get(count_key)
                values = entries.get(sample_key)
                size = self._size + len(text) + 1
                if count is not None and values is not None and size <= self._limit:
                    count[0] += 1  # type: ignore[index]
                    count[1] += 1  # type: ignore[index]
                    values.append(text)  # type: ignore[attr-defined]
                    self._size = size
                    return
            finally:
                lock.release()
        self._put(count_key, 1, sample_key, text, line)

    def samples(
        self, count_key: SeriesKey | None, sample_key: SeriesKey, scale: float | None = 1000.0
    ) -> List[float] | None:
        """The list a caller appends the values of the sample series ``sample_key`` to: the next drain sends
        each as one sample and, if ``count_key`` is not None, one ``count_key`` increment (the request
        recorder: a finished request). ``scale`` 1000.0: durations in seconds, sent as ms (``format_ms`` of
        ``value * 1000``); 1.0: ms; None: values sent as they are (``format_number``, for ``h`` and ``d``).
        Appends take no lock while the list is not empty and :attr:`here` reads 1; otherwise the caller
        calls :meth:`append_first`. A value the drain cannot send (not finite; for a duration, negative) is
        left out then and counted as an invalid call. None when :data:`TALLIES_MAX` series have such a list
        already (use ``count``/``sample``).

        >>> t = BufferedTransport(Settings(protocol="null"))
        >>> durations = t.samples(("n", "c", ""), ("t", "ms", ""))
        >>> t.append_first(durations, 0.0025); durations.append(0.004); t.pending_lines()
        ['n:2|c', 't:2.5:4|ms']
        >>> sizes = t.samples(None, ("size", "h", ""), None)
        >>> t.append_first(sizes, 512); sizes.append(-0.5); t.pending_lines()[-1]
        'size:512:-0.5|h'
        >>> t.close()
        """
        return self._series_list(self._sample_lists, (count_key, sample_key, scale), TALLIES_MAX)

    def _series_list(self, table: Dict[Any, List[Any]], key: Any, limit: int) -> List[Any] | None:
        """The list of ``key`` in ``table`` (the sample lists, the tallies or the gauge lists), made if
        ``table`` holds fewer than ``limit``; None otherwise."""
        if _getpid() != self._pid:  # a forked child: new locks first (one held at fork would never be freed)
            self._forked()
        with self._lock:
            values = table.get(key)
            if values is None and len(table) < limit:
                values = table[key] = []
            return values

    def append_first(self, values: List[Any], value: Any) -> None:
        """Append ``value`` to a series list (:meth:`_series_list`) that is empty (or long) after checking the
        process (a forked child empties what its parent left); drain a long list (:data:`REQUESTS_MAX`) and
        start the flusher (where none may run, the buffer is sent at once)."""
        if _getpid() != self._pid:
            self._forked()
        values.append(value)
        if len(values) >= REQUESTS_MAX:
            self._drain()
        if self._thread is None:
            self._no_flusher()

    def _pending(self) -> bool:
        """Whether anything waits: buffered entries, tallies, sample or gauge lists."""
        return (
            bool(self._size)
            or any(self._tallies.values())
            or any(self._sample_lists.values())
            or any(self._gauges.values())
        )

    def tally(self, key: SeriesKey) -> List[int] | None:
        """The list a counter call appends its increment (a non-negative int) of the series ``key`` to, with
        no lock and no other step, while the list is not empty and :attr:`here` reads 1; otherwise it calls
        :meth:`append_first` (which checks the process and starts the flusher). The next drain sends one
        merged line per series. None when :data:`TALLIES_MAX` series have one already (use ``count``).

        >>> t = BufferedTransport(Settings(protocol="null"))
        >>> hits = t.tally(("hits", "c", "|#k:v"))
        >>> t.append_first(hits, 2); hits.append(3) if hits and t.here[0] else None; t.pending_lines()
        ['hits:5|c|#k:v']
        >>> t.close()
        """
        return self._series_list(self._tallies, key, TALLIES_MAX)

    def _take_tallies(self) -> None:
        """Fold the increments appended to the tallies into the buffer (the caller holds ``_lock``)."""
        entries = self._entries
        for key, tally in self._tallies.items():
            if not tally:
                continue
            taken = _taken(tally)
            entry = entries.get(key)
            if entry is None:
                entries[key] = [sum(taken), len(taken)]
                self._size += len(key[0]) + len(key[2]) + 12  # name:N|c|#...\n, N of a few digits
            else:
                entry[0] += sum(taken)  # type: ignore[index]
                entry[1] += len(taken)  # type: ignore[index]
            self._series = True

    def gauges(self, key: SeriesKey) -> List[Any] | None:
        """The list the calls of the gauge series ``key`` append their changes to, as a counter call appends
        to its :meth:`tally`: a delta as a number (int or finite float), a set of ``value`` as ``(value,)``.
        The next drain sends what the window's changes leave at the exporter (see the module docstring).
        None when :data:`TALLIES_MAX` series have one already (use :meth:`gauge`).

        >>> t = BufferedTransport(Settings(protocol="null"))
        >>> depth = t.gauges(("depth", "g", ""))
        >>> t.append_first(depth, 2); depth.append((-3,)); depth.append(1); depth.append(1)
        >>> t.pending_lines()
        ['depth:0|g', 'depth:-3|g', 'depth:+2|g']
        >>> t.close()
        """
        return self._series_list(self._gauges, key, TALLIES_MAX)

    def gauge(self, key: SeriesKey, change: Any, sampled: str = "") -> None:
        """One change of the gauge series ``key`` (a delta as a number, a set as a 1-tuple: see
        :meth:`gauges`), through its list (made now if need be) so it keeps its place among the others.
        ``sampled``: the sample-rate suffix (``|@0.5``) of a sampled call that was kept; its lines carry it
        (the exporter ignores a gauge's rate: it merges with the others).

        >>> t = BufferedTransport(Settings(protocol="null"))
        >>> t.gauge(("depth", "g", "|#q:a"), (7,)); t.gauge(("depth", "g", "|#q:a"), (5,)); t.pending_lines()
        ['depth:5|g|#q:a']
        >>> t.gauge(("depth", "g", "|#q:a"), 2, "|@0.5"); t.pending_lines()
        ['depth:5|g|@0.5|#q:a', 'depth:+2|g|@0.5|#q:a']
        >>> t.close()
        """
        changes = self._gauges.get(key)
        if changes is None:
            changes = self._series_list(self._gauges, key, TALLIES_MAX)
        if changes is not None and not sampled:
            if changes and self._here[0]:
                changes.append(change)
            else:
                self.append_first(changes, change)
            return
        # a sampled call, or too many series with a list: merged under the lock, after what the list holds
        if _getpid() != self._pid:
            self._forked()
        with self._lock:
            if changes:
                self._take_gauge(key, changes)
            self._fold_gauge(key, (change,))
            if sampled:
                self._entries[key][3] = sampled  # type: ignore[index]
            full = self._size > self._limit
        if full:
            self._drain()
        if self._thread is None:
            self._no_flusher()

    def _take_gauges(self) -> None:
        """Fold the changes appended to the gauge lists into the buffer (the caller holds ``_lock``)."""
        for key, changes in self._gauges.items():
            if changes:
                self._take_gauge(key, changes)

    def _take_gauge(self, key: SeriesKey, changes: List[Any]) -> None:
        self._fold_gauge(key, _taken(changes))

    def _fold_gauge(self, key: SeriesKey, changes: Any) -> None:
        """Apply ``changes`` (in call order) to the buffer entry of the gauge series ``key``: a set replaces
        the entry's set and drops its deltas, a delta adds to the deltas after the set. An int beyond the
        largest float64 (the lock-free paths do not check an int's size; the exporter could not read it) is
        left out and counted as an invalid call."""
        entry: Any = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = [None, None, 0, ""]
        lines = _gauge_line_count(entry)
        try:
            value, delta = _gauge_applied(entry[0], entry[1], changes)
            sendable = _sendable(value) and _sendable(delta)
        except OverflowError:  # such an int added to a float
            sendable = False
        if not sendable:
            kept = [c for c in changes if _sendable(c[0] if c.__class__ is tuple else c)]
            self._count_invalid(len(changes) - len(kept))
            changes = kept
            if not entry[2] and not changes:  # nothing of this series left to send
                del self._entries[key]
                return
            value, delta = _gauge_applied(entry[0], entry[1], changes)
        entry[0], entry[1] = value, delta
        entry[2] += len(changes)
        grown = _gauge_line_count(entry) - lines
        if grown > 0:  # name:N|g|#...\n per line, N of a few digits
            self._size += grown * (len(key[0]) + len(key[2]) + 12)
        self._series = True

    def _take_samples(self) -> None:
        """Fold the sample lists into the buffer: per series the values as samples and, with a count key, one
        count (the caller holds ``_lock``)."""
        entries = self._entries
        for (count_key, sample_key, scale), values in self._sample_lists.items():
            if not values:
                continue
            taken = _taken(values)
            texts = format_numbers(taken) if scale is None else format_ms_of(taken, scale)
            if "" in texts:  # a value that cannot be sent: left out and counted
                self._count_invalid(texts.count(""))
                texts = [text for text in texts if text]
                if not texts:
                    continue
            if count_key is not None:
                entry = entries.get(count_key)
                if entry is None:
                    entries[count_key] = [len(texts), len(texts)]
                else:
                    entry[0] += len(texts)  # type: ignore[index]
                    entry[1] += len(texts)  # type: ignore[index]
            buffered = entries.get(sample_key)
            if buffered is None:
                entries[sample_key] = texts
            else:
                buffered.extend(texts)  # type: ignore[attr-defined]
            self._size += sum(map(len, texts)) + len(texts)  # > 0: flush() sends what pending_lines() folded
            self._series = True

    def _count_invalid(self, calls: int) -> None:
        """``calls`` a drain left out (values that cannot be sent) count as invalid calls."""
        self.stats.invalid_calls += calls
        reasons = self.stats.invalid_reasons
        reasons["invalid_call"] = reasons.get("invalid_call", 0) + calls

    def _put(
        self,
        count_key: SeriesKey | None,
        value: int,
        sample_key: SeriesKey | None,
        text: str,
        line: bytes | None,
    ) -> None:
        if _getpid() != self._pid:
            self._forked()
        while True:
            with self._lock:
                entries = self._entries
                size = 0
                if count_key is not None and count_key not in entries:
                    # name:N|c|#...\n, with room for the sum to grow by a digit or so
                    size = len(count_key[0]) + len(count_key[2]) + (6 if value < 10 else 5 + len(str(value)))
                if sample_key is not None:
                    if self._multi_value and sample_key in entries:
                        size += len(text) + 1
                    else:
                        size += len(sample_key[0]) + len(sample_key[1]) + len(sample_key[2]) + len(text) + 3
                if line is not None:
                    size += len(line) + 1
                if self._size + size <= self._limit or not self._size:
                    self._size += size
                    if count_key is not None:
                        entry = entries.get(count_key)
                        if entry is None:
                            entries[count_key] = [value, 1]
                            self._series = True
                        else:
                            entry[0] += value  # type: ignore[index]
                            entry[1] += 1  # type: ignore[index]
                    if sample_key is not None:
                        values = entries.get(sample_key)
                        if values is None:
                            entries[sample_key] = [text]
                            self._series = True
                        else:
                            values.append(text)  # type: ignore[attr-defined]
                    if line is not None:
                        self._seq += 1
                        entries[self._seq] = line
                    break
            self._drain()  # the datagram is full: send it, then buffer this call in an empty buffer
        if self._thread is None:
            self._no_flusher()

    def add_flush(self, lines: str) -> None:
        """Send ``lines`` (one, or several joined by newlines) now, with whatever is buffered: the same as
        ``add`` of each line then ``flush()``, in one call.

        >>> t = BufferedTransport(Settings(protocol="null"))
        >>> t.add("view:1|c"); t.add_flush("a:1|c\\nb:2|ms")
        >>> t.stats.sent_datagrams, t.stats.sent_lines
        (1, 3)
        >>> t.close()
        """
        data = [line.encode() for line in lines.split("\n")]
        for line in data:
            self._put(None, 0, None, "", line)
        self.flush()

    def flush(self) -> None:
        """Send everything buffered now, in as few datagrams as the size limit allows."""
        if _getpid() != self._pid:
            self._forked()
            return
        if self._pending():
            self._drain()

    def pending_lines(self) -> List[str]:
        """The lines the buffer would send now (for tests and doctests; nothing is sent or removed)."""
        with self._lock:
            self._take_samples()
            self._take_tallies()
            self._take_gauges()
            return [line for data in self._render(self._entries)[0] for line in data.decode().split("\n")]

    # -- sending -----------------------------------------------------------------------------------------

    def _render(self, entries: Dict[object, object]) -> Tuple[List[bytes], List[int]]:
        """The encoded lines of a taken buffer and the metric calls each carries, in the order of each first
        call: a merged counter, a series' samples (multi-value lines up to the line limit, or one line each),
        a gauge's lines (one element: they travel in one datagram), or a line as written."""
        lines: List[bytes] = []
        calls: List[int] = []
        add_line, add_calls = lines.append, calls.append
        name: str
        kind: str
        rest: str
        for key, entry in entries.items():
            if type(key) is int:
                add_line(entry)  # type: ignore[arg-type]
                add_calls(1)
                continue
            name, kind, rest = key  # type: ignore[misc]
            if kind == "c":
                if not _sendable(entry[0]):  # type: ignore[index]  # an int past float64: the exporter cannot read it
                    self._count_invalid(entry[1])  # type: ignore[index]
                    continue
                add_line(f"{name}:{entry[0]}|c{rest}".encode())  # type: ignore[index]
                add_calls(entry[1])  # type: ignore[index]
                continue
            if kind == "g":
                add_line(gauge_lines(name, entry[3] + rest, entry[0], entry[1]).encode())  # type: ignore[index]
                add_calls(entry[2])  # type: ignore[index]
                continue
            head, tail = f"{name}:".encode(), f"|{kind}{rest}".encode()
            if not self._multi_value:
                for value in entry:  # type: ignore[attr-defined]
                    add_line(head + value.encode() + tail)
                    add_calls(1)
                continue
            room = self._line_limit - len(head) - len(tail)
            joined = ":".join(entry)  # type: ignore[arg-type]
            if len(joined) <= room:  # the common case: the window's samples fit one line
                add_line(head + joined.encode() + tail)
                add_calls(len(entry))  # type: ignore[arg-type]
                continue
            chunk: List[str] = []
            used = -1
            for value in entry:  # type: ignore[attr-defined]
                if chunk and used + len(value) + 1 > room:
                    add_line(head + ":".join(chunk).encode() + tail)
                    add_calls(len(chunk))
                    chunk, used = [], -1
                chunk.append(value)
                used += len(value) + 1
            add_line(head + ":".join(chunk).encode() + tail)
            add_calls(len(chunk))
        return lines, calls

    def _drain(self) -> None:
        # At exit, locks are waited for a short while only: uwsgi's stop handlers call exit() from a signal
        # handler, which may have interrupted this very thread inside a locked block; it never resumes, so
        # waiting for ever would hang the worker until its master kills it (and its buffer with it).
        wait_s = EXIT_LOCK_WAIT_S if _exiting else -1
        sink_locked = self._sink_lock.acquire(timeout=wait_s)
        try:
            locked = self._lock.acquire(timeout=wait_s)
            try:
                if self._sample_lists:
                    self._take_samples()
                if self._tallies:
                    self._take_tallies()
                if self._gauges:
                    self._take_gauges()
                entries, series = self._entries, self._series
                if not entries:
                    return
                self._entries, self._seq, self._size, self._series = {}, 0, 0, False
            finally:
                if locked:
                    self._lock.release()
            self._send_entries(entries, series)
        finally:
            if sink_locked:
                self._sink_lock.release()
        if self._telemetry_at <= _monotonic():
            self._report()

    def _send_entries(self, entries: Dict[object, object], series: bool = True) -> None:
        """Render a taken buffer (``series``: with merged series, not only lines as written, which need no
        rendering) and send it in as few datagrams as the size limit allows."""
        try:
            if series:
                lines, calls = self._render(entries)
            else:
                lines = list(entries.values())  # type: ignore[arg-type]
                calls = [1] * len(lines)
        except Exception as err:  # pragma: no cover - a line that cannot be encoded; never raise
            self._failed(len(entries), err)
            return
        if sum(map(len, lines)) + len(lines) <= self._limit:  # the common case: one datagram
            self._send(b"\n".join(lines), sum(calls))
            return
        for payload, n_calls in self._datagrams(lines, calls):
            self._send(payload, n_calls)

    def _datagrams(self, lines: List[bytes], calls: Iterable[int]) -> Iterator[Tuple[bytes, int]]:
        """``lines`` (with the metric calls each carries) joined in order into datagrams of at most
        ``max_datagram_bytes``: (payload, calls in it)."""
        batch: List[bytes] = []
        batch_size = batch_calls = 0
        for data, n_calls in zip(lines, calls):
            size = len(data) + 1
            if batch and batch_size + size > self._limit:
                yield b"\n".join(batch), batch_calls
                batch, batch_size, batch_calls = [], 0, 0
            batch.append(data)
            batch_size += size
            batch_calls += n_calls
        if batch:
            yield b"\n".join(batch), batch_calls

    def _send(self, payload: bytes, n_lines: int, retry: bool = True) -> None:
        """Send one datagram (the caller holds ``_sink_lock``).

        After failed or refused sends, the start lines go first (in the same datagram when they fit): the
        first datagram a restarted exporter receives creates the zero-started series before their next
        increment."""
        try:
            if self._sink is None:
                self._sink = self._make_sink(self.settings)
            self._sink.send(self._with_start_lines(payload) if self._failing else payload)
        except DatagramRefusedError as err:  # UDP: an earlier datagram was lost; this one did not go out
            self._refused(err)
            if retry:
                self._send(payload, n_lines, retry=False)  # now with the start lines first
            else:
                self._failed(n_lines, err)
        except Exception as err:  # never raise into the app: count, warn now and then
            self._failed(n_lines, err)
        else:
            self.stats.sent_datagrams += 1
            self.stats.sent_lines += n_lines
            self._last_lines = n_lines
            if self._failing and _monotonic() >= self._failing_until:  # reachable again
                self._failing = False

    def _with_start_lines(self, payload: bytes) -> bytes:
        """``payload`` with this process's start lines in front; those that do not fit it are sent first."""
        if self.start_lines is None or in_uwsgi_master():
            return payload
        try:
            lines = [line.encode() for line in self.start_lines()]
        except Exception:  # pragma: no cover - the client's provider never raises; belt and braces
            return payload
        if sum(map(len, lines)) + len(lines) + len(payload) < self._limit:
            return b"\n".join([*lines, payload])
        for start, _ in self._datagrams(lines, itertools.repeat(0)):
            self._sink.send(start)  # type: ignore[union-attr]
        self._last_lines = 0
        return payload

    def _refused(self, err: BaseException) -> None:
        """The last datagram was refused (UDP, ICMP port unreachable): its calls count as dropped, and the
        start lines go in front of every datagram until none was refused for ``RESTART_HOLD_S``."""
        lost, self._last_lines = self._last_lines, 0
        self.stats.sent_lines -= lost
        self._failed(lost, err)
        self._failing_until = _monotonic() + RESTART_HOLD_S

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
        # one report at a time: two threads finding it due must not both send it (at exit: see _drain)
        locked = self._sink_lock.acquire(timeout=EXIT_LOCK_WAIT_S if _exiting else -1)
        try:
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
            except DatagramRefusedError as err:  # not reported (these counts go out with the next one); the
                self._refused(err)  # exporter may be restarting: start lines first from now on
                return
            except Exception:  # not reported: these counts go out with the next report
                return
            self._last_lines = 0
            reported.update(counts)
        finally:
            if locked:
                self._sink_lock.release()

    def _failed(self, n_lines: int, err: BaseException) -> None:
        self.stats.dropped_lines += n_lines
        self.stats.send_errors += 1
        self._failing = True
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
        """Buffer this process's start lines (not in a uwsgi master: its workers send their own).

        Called on a process's first buffered call and when the client registers more (the caller may hold
        ``_sink_lock``, so the lines go straight into the buffer, never through a drain). After failed sends
        ``_send`` puts them in front of the datagrams itself."""
        self._started = True  # a fork resets it: the child sends its own
        if self.start_lines is None or in_uwsgi_master():
            return
        try:
            lines = self.start_lines()
        except Exception:  # pragma: no cover - the client's provider never raises; belt and braces
            log.warning("statsd_instrument: building the start lines failed", exc_info=True)
            return
        with self._lock:
            for line in lines:
                data = line.encode()
                self._seq += 1
                self._entries[self._seq] = data
                self._size += len(data) + 1

    def restart_lines(self) -> None:
        """The client registered more start lines: if this process sent its own already, send them again."""
        if self._started and self._pid == _getpid():
            self._start()

    # -- the flusher thread ------------------------------------------------------------------------------

    def _no_flusher(self) -> None:
        """Start the flusher thread, or send at once where no thread may run (a uwsgi master)."""
        if not self._started:
            self._start()
        if self._closed or not threads_allowed():
            self.flush()
            return
        with self._start_lock:
            if self._thread is not None:
                return
            token = self._token = object()
            self._thread = threading.Thread(
                target=self._run_flusher, args=(token,), name="statsd_instrument-flush", daemon=True
            )
        _start_without_signals(self._thread)

    def _run_flusher(self, token: object) -> None:
        # ticks once per window: a line waits at most one window (plus the time to get the GIL)
        pid, wake, interval_s = self._pid, self._wake, self._interval_s
        while True:
            wake.wait(interval_s)
            if self._token is not token or self._pid != pid:
                return
            try:
                if self._pending():
                    self._drain()
            except Exception:  # pragma: no cover - a drain never raises; belt and braces
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
            locked = self._sink_lock.acquire(timeout=EXIT_LOCK_WAIT_S if _exiting else -1)
            try:
                if self._sink is not None:
                    self._sink.close()
                    self._sink = None
            finally:
                if locked:
                    self._sink_lock.release()
        _live.discard(self)


def _taken(values: List[Any]) -> List[Any]:
    """What a series list holds now, removed from it: values appended meanwhile (no lock) stay for the next
    drain.

    >>> values = [1, 2]; _taken(values), values
    ([1, 2], [])
    """
    taken = values[:]
    del values[: len(taken)]
    return taken


def gauge_lines(name: str, rest: str, value: Any, delta: Any) -> str:
    """The newline-joined lines that set the gauge ``name`` (tag suffix ``rest``) to ``value`` (None: no
    set), then add ``delta`` to it (None: no delta; 0 is sent as ``+0``). A negative value is set as ``0``
    then the value: statsd_exporter reads a leading sign as a delta.

    >>> gauge_lines("depth", "|#q:a", -3, 2)
    'depth:0|g|#q:a\\ndepth:-3|g|#q:a\\ndepth:+2|g|#q:a'
    >>> gauge_lines("in_flight", "", None, 0), gauge_lines("ratio", "", 0.5, None)
    ('in_flight:+0|g', 'ratio:0.5|g')
    """
    lines = []
    if value is not None:
        text = format_number(value)
        if text[0] == "-":
            lines.append(f"{name}:0|g{rest}")
        lines.append(f"{name}:{text}|g{rest}")
    if delta is not None:
        try:
            text = format_number(delta)
        except ValueError:  # float deltas summed past the largest float: what adding them would give
            text = repr(float(delta))
        lines.append(f"{name}:{text if text[0] == '-' else '+' + text}|g{rest}")
    return "\n".join(lines)


def _gauge_applied(value: Any, delta: Any, changes: Any) -> Tuple[Any, Any]:
    """The set (None: none) and the delta after it (None: none) once ``changes`` follow ``value``, ``delta``.

    >>> _gauge_applied(None, None, [1, 2]), _gauge_applied(7, 1, [(5,), -1, -1]), _gauge_applied(3, 1, [])
    ((None, 3), (5, -2), (3, 1))
    """
    if not changes:
        return value, delta
    try:
        total = sum(changes)  # the common case: deltas only (a set, a tuple, cannot be added)
    except TypeError:  # the last set wins, then the deltas after it (looked for from the end: sets come last)
        last = len(changes) - 1
        while changes[last].__class__ is not tuple:
            last -= 1
        after = changes[last + 1 :]
        return changes[last][0], sum(after) if after else None
    return value, total if delta is None else delta + total


def _sendable(number: Any) -> bool:
    """Whether a gauge's set or delta (None: none) or a counter's sum is a float or an int the exporter reads
    as a float64 (an int past that also has too many digits to format, past 4,300)."""
    return (
        number is None
        or number.__class__ is float
        or -1.7976931348623157e308 <= number <= 1.7976931348623157e308
    )


def _gauge_line_count(entry: List[Any]) -> int:
    """How many lines the gauge buffer entry ``[set or None, delta or None, calls]`` renders to."""
    value = entry[0]
    return (0 if value is None else 2 if value < 0 else 1) + (entry[1] is not None)


class CaptureTransport:
    """Keeps lines in memory instead of sending them (test mode): one line per metric call, unmerged.

    >>> t = CaptureTransport(Settings(protocol="null"))
    >>> t.add("a:1|c"); t.count(("b", "c", "|#k:v"), 2); t.sample(("t", "ms", ""), "1.5"); t.lines
    ['a:1|c', 'b:2|c|#k:v', 't:1.5|ms']
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lines: List[str] = []
        self.stats = ClientStats()

    def add(self, line: str) -> None:
        """Record ``line``."""
        self.lines.append(line)
        self.stats.sent_lines += 1

    def count(self, key: SeriesKey, value: int) -> None:
        """Record the counter line of ``key``."""
        self.add(f"{key[0]}:{value}|{key[1]}{key[2]}")

    def sample(self, key: SeriesKey, text: str) -> None:
        """Record the sample line of ``key``."""
        self.add(f"{key[0]}:{text}|{key[1]}{key[2]}")

    def gauge(self, key: SeriesKey, change: Any, sampled: str = "") -> None:
        """Record the line(s) of one gauge change (see :meth:`BufferedTransport.gauge`), as one entry.

        >>> t = CaptureTransport(Settings(protocol="null"))
        >>> t.gauge(("depth", "g", ""), (-2,)); t.gauge(("depth", "g", ""), 1); t.lines
        ['depth:0|g\\ndepth:-2|g', 'depth:+1|g']
        """
        if change.__class__ is tuple:
            self.add(gauge_lines(key[0], sampled + key[2], change[0], None))
        else:
            self.add(gauge_lines(key[0], sampled + key[2], None, change))

    def add_request(self, count_key: SeriesKey, sample_key: SeriesKey, text: str, line: bytes | None) -> None:
        """Record a request's lines, as :meth:`BufferedTransport.add_request` buffers them."""
        self.count(count_key, 1)
        self.sample(sample_key, text)
        if line is not None:
            self.add(line.decode())

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


#: after a refused UDP datagram, the start lines go in front of every datagram until none was refused for
#: this long: Linux answers another host's datagrams with at most one ICMP error a second (burst 6), so a
#: datagram sent without a refusal during an outage is no proof that the exporter is back
RESTART_HOLD_S = 2.0
#: at exit, how long a flush waits for a lock before it goes on without it (see ``_drain``)
EXIT_LOCK_WAIT_S = 1.0
_exiting = False


def _flush_all_at_exit() -> None:
    # A second stop signal must not cut the flush short: uwsgi's handlers call exit() again from inside
    # this one (a worker signalled directly and by its master at once); held back, it lands afterwards.
    global _exiting
    _exiting = True
    with _signals_blocked():
        for transport in list(_live):
            try:
                transport.close()
            except Exception:  # pragma: no cover - exit must go on
                pass


atexit.register(_flush_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_stop_all_before_fork)
