"""``statsd-instrument exporter``: the emulation with statsd_exporter's command-line flags.

Flags are spelled as statsd_exporter spells them (``--statsd.listen-udp=:9125`` or ``--statsd.listen-udp
:9125``; booleans also as ``--no-...``). Defaults are the real exporter's: UDP and TCP on ``:9125`` (every
interface), web on ``:9102``. SIGHUP reloads the mapping; SIGTERM and SIGINT stop it cleanly (exit 0).

>>> main(["--check-config"])
0
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from statsd_instrument.exporter.lineparser import ParserFlags
from statsd_instrument.exporter.relay import DEFAULT_PACKET_LENGTH
from statsd_instrument.exporter.server import Exporter
from statsd_instrument.exporter.store import DEFAULT_MAX_SERIES
from statsd_instrument.mapping import MappingError, load_mapping

# Flags of statsd_exporter that have no effect here (no internal queue, no mapper cache to size).
_IGNORED_VALUE_FLAGS = [
    "statsd.cache-size",
    "statsd.cache-type",
    "statsd.event-queue-size",
    "statsd.event-flush-threshold",
    "statsd.event-flush-interval",
    "statsd.udp-packet-queue-size",
    "debug.dump-fsm",
    "log.level",
    "log.format",
    "web.config.file",
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with statsd_exporter's flag names and defaults.

    >>> build_parser().parse_args(["--statsd.listen-udp", ":8125", "--no-statsd.parse-librato-tags"]).udp
    ':8125'
    """
    parser = argparse.ArgumentParser(
        prog="statsd-instrument exporter",
        description="statsd_exporter emulation: StatsD/DogStatsD in, Prometheus /metrics out.",
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("--web.listen-address", dest="web", default=":9102", help="web address for /metrics (default :9102)")
    add("--web.telemetry-path", dest="telemetry_path", default="/metrics", help="path of the metrics page")
    add(
        "--web.enable-lifecycle", dest="lifecycle", action="store_true", help="enable POST /-/reload, /-/quit"
    )
    add("--statsd.listen-udp", dest="udp", default=":9125", help='UDP address ("" disables it)')
    add("--statsd.listen-tcp", dest="tcp", default=":9125", help='TCP address ("" disables it)')
    add("--statsd.listen-unixgram", dest="unixgram", default="", help='unixgram socket path ("" disables it)')
    add("--statsd.unixsocket-mode", dest="unixsocket_mode", default="755", help="permission of the socket")
    add("--statsd.mapping-config", dest="mapping", default="", help="mapping configuration file")
    add("--statsd.read-buffer", dest="read_buffer", type=int, default=0, help="socket receive buffer (bytes)")
    add(
        "--emulation.max-series",
        dest="max_series",
        type=int,
        default=DEFAULT_MAX_SERIES,
        help="emulation only (statsd_exporter has no limit): series kept at most; events creating more are "
        f'dropped and counted as events_error_total{{reason="series_limit"}}; 0 = no limit '
        f"(default {DEFAULT_MAX_SERIES})",
    )
    add(
        "--statsd.relay.address",
        dest="relay",
        action="append",
        default=[],
        help="UDP host:port to relay every received line to (repeat for several targets)",
    )
    add(
        "--statsd.relay.packet-length",
        dest="relay_packet_length",
        type=int,
        default=DEFAULT_PACKET_LENGTH,
        help="largest relayed datagram in bytes (default 1400)",
    )
    add("--check-config", dest="check_config", action="store_true", help="check the mapping and exit")
    for style in ("dogstatsd", "influxdb", "librato", "signalfx"):
        add(
            f"--statsd.parse-{style}-tags",
            dest=f"parse_{style}",
            action=argparse.BooleanOptionalAction,
            default=True,
            help=f"parse {style} tags (default on)",
        )
    for name in _IGNORED_VALUE_FLAGS:
        add(f"--{name}", default=None, help="accepted for compatibility; no effect here")
    return parser


def main(argv: list[str]) -> int:
    """Run the exporter until SIGTERM/SIGINT (or ``/-/quit``); returns the exit code.

    >>> main(["--statsd.listen-udp=", "--statsd.listen-tcp="])  # no listener at all
    1
    """
    args = build_parser().parse_args(argv)
    flags = ParserFlags(args.parse_dogstatsd, args.parse_influxdb, args.parse_librato, args.parse_signalfx)
    config = None
    if args.mapping:
        try:
            config = load_mapping(args.mapping)
        except MappingError as err:
            print(f"error loading config:\n{err}", file=sys.stderr)
            return 1
        for finding in config.findings:
            print(finding.format(args.mapping), file=sys.stderr)
    if args.check_config:
        print("Configuration check successful, exiting", file=sys.stderr)
        return 0
    if not (args.udp or args.tcp or args.unixgram):
        print("At least one of UDP/TCP/Unixgram listeners must be specified.", file=sys.stderr)
        return 1
    exporter = Exporter(
        config,
        udp=args.udp,
        tcp=args.tcp,
        unixgram=args.unixgram,
        web=args.web,
        telemetry_path=args.telemetry_path,
        enable_lifecycle=args.lifecycle,
        flags=flags,
        read_buffer=args.read_buffer,
        unixsocket_mode=args.unixsocket_mode,
        relay=[target for target in args.relay if target],
        relay_packet_length=args.relay_packet_length,
        max_series=args.max_series,
    )
    exporter.mapping_path = args.mapping or None
    stop = threading.Event()
    reload_requested = threading.Event()
    exporter.on_quit = stop.set
    try:
        exporter.start()
    except (OSError, ValueError) as err:
        print(f"statsd-instrument exporter: cannot start: {err}", file=sys.stderr)
        return 1

    def request_reload(*_: object) -> None:
        reload_requested.set()
        stop.set()

    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, request_reload)
    print(
        "statsd-instrument exporter: accepting StatsD traffic "
        f"udp={args.udp or '-'} (port {exporter.udp_port}) "
        f"tcp={args.tcp or '-'} (port {exporter.tcp_port}) unixgram={args.unixgram or '-'}; "
        f"metrics on {args.web} (port {exporter.web_port}){args.telemetry_path}"
        + "".join(f"; relaying to {target}" for target in exporter.relay_targets),
        file=sys.stderr,
        flush=True,
    )
    try:
        while True:
            if not stop.wait(0.5):
                continue
            if reload_requested.is_set():
                reload_requested.clear()
                stop.clear()
                exporter.reload()
                continue
            break
    finally:
        exporter.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
