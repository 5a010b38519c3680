"""Run a program one top-level statement at a time and compare what two libraries sent per statement.

After each statement a marker line is sent to the collector from another socket; loopback UDP delivers
in order, so the lines between two markers are exactly what that statement sent.
"""

from __future__ import annotations

import ast
import random
import socket
import time
from typing import Callable

from tests.helpers import UdpCollector

MARK = "zz.callbycall.marker:1|c"


def statements(program: str) -> list:
    """Source text of each top-level statement."""
    return [ast.get_source_segment(program, node) for node in ast.parse(program).body]


def run_statement_by_statement(
    program: str, namespace: dict, port: int, flush: Callable[[dict, bool], None] | None = None
) -> dict:
    """Execute ``program`` in ``namespace``; seed ``random`` identically before each statement (sampling
    must then decide the same way in both libraries); call ``flush(namespace, last)`` after each one; send a
    marker line to 127.0.0.1:``port``. Returns the namespace."""
    body = ast.parse(program).body
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as marker:
        for index, node in enumerate(body):
            random.seed(index)
            try:
                exec(compile(ast.Module([node], []), "<program>", "exec"), namespace)
            finally:
                if flush is not None:
                    flush(namespace, index == len(body) - 1)
            marker.sendto(MARK.encode(), ("127.0.0.1", port))
    return namespace


def between_marks(collector: UdpCollector, marks: int, timeout_s: float = 10.0) -> list:
    """The collector's lines, one list per statement (waits until ``marks`` markers arrived)."""
    deadline = time.monotonic() + timeout_s
    while collector.lines().count(MARK) < marks and time.monotonic() < deadline:
        time.sleep(0.02)
    chunks: list = [[]]
    for line in collector.lines():
        if line == MARK:
            chunks.append([])
        else:
            chunks[-1].append(line)
    return chunks[:-1]
