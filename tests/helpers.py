"""Shared test infrastructure: free ports, real processes stopped by pid, a UDP collector, scraping.

Every server a test starts listens on 127.0.0.1 only and is stopped by pid (its whole process group) when
the test ends, so nothing is left listening.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Sequence

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that is free on 127.0.0.1 for both TCP and UDP right now."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        try:
            with socket.socket(socket.AF_INET, other) as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


def wait_until(check, timeout_s: float, interval_s: float = 0.05):
    """Poll ``check()`` until it returns a truthy value (returned) or the timeout passes (its last value)."""
    deadline = time.monotonic() + timeout_s
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(interval_s)
        value = check()
    return value


def wait_for_port(port: int, timeout_s: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:port (fail early if ``proc`` died)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s}s")


class ManagedProcess:
    """A real server process in its own process group; ``stop()`` signals the group by pid and reaps it.

    >>> p = ManagedProcess([sys.executable, "-c", "import time; time.sleep(30)"])
    >>> p.stop()
    -15
    """

    def __init__(
        self, argv: Sequence[str], env: dict | None = None, cwd: Path | None = None, log: Path | None = None
    ) -> None:
        self.argv = list(argv)
        self.log = log
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        self._out = out
        self.proc = subprocess.Popen(
            self.argv,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.proc.pid

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        """Send ``sig`` to the process by pid, wait, then SIGKILL whatever is left of its group.

        Only the leader is signalled: a uwsgi or gunicorn master then stops its workers gracefully (they
        flush at exit); signalling every worker at once as well cuts uwsgi's worker exit short.
        """
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        try:  # anything left in the group (workers) goes too
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self._out is not subprocess.DEVNULL:
            self._out.close()
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""


class UdpCollector:
    """Receives datagrams on 127.0.0.1 (UDP) or a unixgram path in a thread; ``lines()`` splits them.

    >>> c = UdpCollector()
    >>> with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    ...     _ = s.sendto(b"a:1|c\\nb:2|c", ("127.0.0.1", c.port))
    >>> c.wait_for_lines(2)
    ['a:1|c', 'b:2|c']
    >>> c.close()
    """

    def __init__(self, unix_path: str | None = None, forward_port: int | None = None) -> None:
        # forward_port: also send each datagram on, unchanged, to 127.0.0.1:forward_port (a tee)
        self._forward = None if forward_port is None else ("127.0.0.1", forward_port)
        self._out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if forward_port else None
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(unix_path)
            self.port = 0
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        while not self._closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.datagrams.append(data)
            if self._out is not None:
                self._out.sendto(data, self._forward)

    def lines(self) -> list[str]:
        return [ln for d in list(self.datagrams) for ln in d.decode().split("\n") if ln]

    def wait_for_lines(self, n: int, timeout_s: float = 10.0) -> list[str]:
        """Wait until at least ``n`` lines arrived (or the timeout passed); returns all lines."""
        deadline = time.monotonic() + timeout_s
        while len(self.lines()) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.lines()

    def calls(self) -> collections.Counter:
        """Metric calls per name in what arrived: the client merges calls within its flush window, so a
        counter line counts its (int) value, a timer/histogram line each of its values, any other line one.

        >>> c = UdpCollector()
        >>> with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ...     _ = s.sendto(b"a:3|c\\nt:1:2.5|ms|#k:v\\ng:-1|g", ("127.0.0.1", c.port))
        >>> _ = c.wait_for_lines(3); sorted(c.calls().items())
        [('a', 3), ('g', 1), ('t', 2)]
        >>> c.close()
        """
        calls: collections.Counter = collections.Counter()
        for line in self.lines():
            name, _, rest = line.partition(":")
            values, _, fields = rest.partition("|")
            kind = fields.split("|", 1)[0]
            if kind == "c" and values.isdigit():
                calls[name] += int(values)
            elif kind in ("ms", "h", "d"):
                calls[name] += values.count(":") + 1
            else:
                calls[name] += 1
        return calls

    def wait_for_calls(self, n: int, timeout_s: float = 10.0) -> collections.Counter:
        """Wait until at least ``n`` metric calls arrived in all (see :meth:`calls`); returns them."""
        deadline = time.monotonic() + timeout_s
        while sum(self.calls().values()) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.calls()

    def close(self) -> None:
        self._closed = True
        self._thread.join(2)
        self.sock.close()
        if self._out is not None:
            self._out.close()


def http_get(url: str, timeout_s: float = 10.0, method: str = "GET") -> tuple[int, bytes]:
    """(status, body) of one HTTP request; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse a /metrics page with prometheus_client's parser: {(sample name, sorted labels): value}."""
    status, body = http_get(url)
    assert status == 200, f"GET {url} answered {status}: {body[:500]!r}"
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def exporter_process(
    mapping: Path, web_port: int, log: Path, *, udp_port: int = 0, unixgram: str = ""
) -> ManagedProcess:
    """``statsd-instrument exporter`` as a process on 127.0.0.1 (UDP and/or unixgram, no TCP), listening."""
    proc = ManagedProcess(
        [
            sys.executable,
            "-m",
            "statsd_instrument.cli",
            "exporter",
            f"--statsd.listen-udp={f'127.0.0.1:{udp_port}' if udp_port else ''}",
            "--statsd.listen-tcp=",
            f"--statsd.listen-unixgram={unixgram}",
            f"--web.listen-address=127.0.0.1:{web_port}",
            f"--statsd.mapping-config={mapping}",
        ],
        log=log,
    )
    wait_for_port(web_port, proc=proc.proc)
    return proc


def process_tree(root_pid: int) -> set[int]:
    """``root_pid`` and every live descendant of it (from each /proc/<pid>/stat's parent pid)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree = {root_pid}
    while True:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        if not more:
            return tree
        tree |= more


def python_bin(name: str) -> str:
    """Path of a console script installed in the test interpreter's environment (uwsgi, gunicorn, ...)."""
    return str(VENV_BIN / name)


def scrape_until(url: str, key: tuple, value: float, timeout_s: float = 10.0) -> dict:
    """Scrape ``url`` until the sample ``key`` (see :func:`scrape`) equals ``value`` or the timeout passes."""
    last: list[dict] = []

    def reached() -> bool:
        last[:] = [scrape(url)]
        return last[0].get(key) == value

    wait_until(reached, timeout_s)
    return last[0]
