"""Run example programs exactly as written (fixed addresses such as localhost:8125 included) in a private
network namespace, each into an embedded exporter listening where the program sends.

``python -m tests.dropin_examples < spec.json`` is started by the tests under ``unshare --net`` (as root, or
with ``--map-root-user``): the namespace has only its own loopback, so the fixed ports of the examples are
free and nothing leaves it. For each ``{"program", "probe", "port", "socket"}`` of the spec, an exporter with
the shipped mapping listens on 127.0.0.1:``port`` (and on the unixgram path ``socket``, if any); the program,
followed by the ``probe`` statements, runs in a new interpreter; the exporter's series (its own left out)
are printed as JSON, one list per program.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up() -> None:
    """Bring ``lo`` up in this (new) network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def run_one(example: dict, workdir: str) -> list:
    from statsd_instrument.exporter import Exporter
    from tests.helpers import scrape

    socket_path = example.get("socket")
    if socket_path and os.path.exists(socket_path):
        os.unlink(socket_path)
    exporter = Exporter(
        mapping=REPO / "exporter-mapping.yml",
        udp=f"127.0.0.1:{example['port']}",
        unixgram=socket_path or "",
        web="127.0.0.1:0",
    )
    exporter.start()
    try:
        source = example["program"] + "\n" + example.get("probe", "")
        env = {**os.environ, "PYTHONPATH": str(REPO), **example.get("env", {})}
        done = subprocess.run(
            [sys.executable, "-c", source], cwd=workdir, env=env, capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            return [["error", done.stderr[-2000:]]]
        deadline = time.monotonic() + 5
        while True:
            series = scrape(f"http://127.0.0.1:{exporter.web_port}/metrics")
            mine = sorted(
                [name, sorted(labels), value]
                for (name, labels), value in series.items()
                if not name.startswith(("statsd_exporter_", "go_", "process_", "python_", "datadog_"))
            )
            if mine or time.monotonic() > deadline:
                return mine
            time.sleep(0.05)
    finally:
        exporter.stop()


def main() -> None:
    loopback_up()
    spec = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as workdir:
        print(json.dumps([run_one(example, workdir) for example in spec]))


if __name__ == "__main__":
    main()
