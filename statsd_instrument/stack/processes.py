"""Child processes of the native stack: each in its own process group, logged to a file, stopped by pid.

Stopping sends SIGTERM to the child by pid (a uwsgi master then stops its workers gracefully, and they flush
their metrics at exit; signalling every worker at once cuts that short), waits, then SIGKILLs whatever is left
of its process group and reaps, so nothing the demo started outlives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Mapping, Sequence


class StartupError(RuntimeError):
    """A component did not come up; the message names it and ends with the tail of its log."""


class Child:
    """A started component.

    >>> import sys, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     argv = [sys.executable, "-c", "import time; time.sleep(30)"]
    ...     child = Child("sleeper", argv, Path(tmp) / "sleeper.log")
    ...     child.running()
    ...     _ = child.stop()
    ...     child.running()
    True
    False
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        try:
            self.proc = subprocess.Popen(
                self.argv,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: Ctrl-C in the terminal reaches only the demo
            )
        except BaseException:
            self._log.close()
            raise
        self.pid = self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM the child by pid, wait, SIGKILL what is left of its group; returns the exit code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        # workers of a master that is gone (or that ignored SIGTERM) go too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if not self._log.closed:
            self._log.close()
        return self.proc.returncode

    def failed(self, what: str) -> StartupError:
        return StartupError(f"{self.name} {what}; last lines of {self.log_path}:\n{self.log_tail()}")


def wait_for_tcp(child: Child, port: int, timeout_s: float = 30.0) -> None:
    """Wait until ``child`` accepts TCP connections on 127.0.0.1:``port``; StartupError if it dies first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.running():
            raise child.failed(f"exited with code {child.proc.returncode} before listening on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise child.failed(f"was not listening on 127.0.0.1:{port} after {timeout_s:g} s")


def wait_for_http_ok(child: Child, url: str, timeout_s: float = 30.0) -> None:
    """Wait until GET ``url`` answers 200 (readiness endpoints); StartupError if the child dies first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.running():
            raise child.failed(f"exited with code {child.proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise child.failed(f"did not answer 200 on {url} after {timeout_s:g} s")
