"""A UDP tee for the migration: every statsd datagram goes, unchanged, to the exporter AND the old server.

statsd_exporter, and the embedded exporter (``statsd-instrument exporter``), can relay what they receive
to the old statsd server themselves (``--statsd.relay.address``, see
:mod:`statsd_instrument.exporter.relay`). This tee does it from in front of any exporter, datagram by
datagram, to several targets::

    python -m statsd_instrument.legacy.relay --listen 127.0.0.1:8125 \\
        --to 127.0.0.1:9125 --to old-statsd.internal:8125

Datagrams are forwarded as received (no parsing, no reordering); a target that is down or does not
resolve loses its copy and the others still get theirs. Stops on SIGTERM / SIGINT.

>>> import socket, threading
>>> sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
>>> sink.bind(("127.0.0.1", 0))
>>> relay = Relay("127.0.0.1:0", [f"127.0.0.1:{sink.getsockname()[1]}"])
>>> worker = threading.Thread(target=relay.serve_forever)
>>> worker.start()
>>> with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as app:
...     _ = app.sendto(b"shop.checkout.GET.200:1|c", relay.address)
>>> sink.recv(512)
b'shop.checkout.GET.200:1|c'
>>> relay.stop(); worker.join(); sink.close()
>>> relay.forwarded, relay.failed
(1, 0)
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
from typing import Iterable, Sequence

from statsd_instrument.validation import parse_host_port

log = logging.getLogger("statsd_instrument.legacy.relay")


class Relay:
    """Receives datagrams on ``listen`` and sends each one to every target in ``targets``.

    (Example in the module docstring.) A bad address is refused at once:

    >>> Relay("127.0.0.1:8125", ["old-statsd"])
    Traceback (most recent call last):
    ValueError: --to='old-statsd': expected HOST:PORT
    """

    def __init__(self, listen: str, targets: Sequence[str]) -> None:
        if not targets:
            raise ValueError("--to: at least one target is needed")
        self._targets = [parse_host_port(t, "--to") for t in targets]
        host, port = parse_host_port(listen, "--listen", listen=True)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.bind((host, port))
        self._sock.settimeout(0.2)
        self._out = {f: socket.socket(f, socket.SOCK_DGRAM) for f in (socket.AF_INET, socket.AF_INET6)}
        self._stopping = threading.Event()
        self.forwarded = 0  # datagrams received and forwarded
        self.failed = 0  # copies that could not be sent

    @property
    def address(self) -> tuple:
        """(host, port) actually bound."""
        return self._sock.getsockname()[:2]

    def _forward(self, payload: bytes) -> None:
        self.forwarded += 1
        for host, port in self._targets:
            try:
                family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
                self._out[family].sendto(payload, addr)
            except OSError as exc:
                self.failed += 1
                if self.failed in (1, 10, 100, 1000) or self.failed % 10000 == 0:
                    log.warning(
                        "relay to %s:%s failed (%s); %d copies lost so far", host, port, exc, self.failed
                    )

    def serve_forever(self) -> None:
        """Forward until :meth:`stop`; then close the sockets."""
        try:
            while not self._stopping.is_set():
                try:
                    payload = self._sock.recv(65535)
                except socket.timeout:
                    continue
                self._forward(payload)
        finally:
            self._sock.close()
            for sock in self._out.values():
                sock.close()

    def stop(self) -> None:
        """Ask :meth:`serve_forever` to return (within 0.2 s)."""
        self._stopping.set()


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m statsd_instrument.legacy.relay --listen HOST:PORT --to HOST:PORT [--to ...]``.

    >>> main(["--listen", "127.0.0.1:0"])  # no --to
    2
    """
    parser = argparse.ArgumentParser(
        prog="python -m statsd_instrument.legacy.relay", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:8125", help="where the apps send (default 127.0.0.1:8125)"
    )
    parser.add_argument("--to", action="append", default=[], help="HOST:PORT to forward to (repeat)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        relay = Relay(args.listen, args.to)
    except (ValueError, OSError) as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: relay.stop())
    host, port = relay.address
    print(f"relaying {host}:{port} -> {', '.join(args.to)}", file=sys.stderr, flush=True)
    relay.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
