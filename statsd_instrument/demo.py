"""``statsd-instrument demo``: the whole stack natively, no Docker, in one command.

Starts the embedded exporter with the shipped ``exporter-mapping.yml``, the example Flask app under uwsgi
(5 workers) pushing to it, Prometheus (if installed; config derived from the shipped ``prometheus.yml`` and
rules) scraping the exporter, Alertmanager (if installed; the shipped routing) delivering to a local webhook
receiver, and a bounded-rate traffic generator; prints a live summary and where to look. Ctrl-C or the end
of ``--duration`` stops everything it started, by pid. Runs from a checkout or from an installed wheel
(``pip install 'statsd_instrument[demo]'``), which carries the stack files.

>>> import contextlib
>>> with contextlib.redirect_stderr(sys.stdout):
...     main(["--app-port", "70000"])
statsd-instrument demo: --app-port: 70000 is not a port (1-65535)
2
"""

from __future__ import annotations

import argparse
import sys

from statsd_instrument.stack import alertmanager as am
from statsd_instrument.stack.commands import find_uwsgi
from statsd_instrument.stack.demo_run import PROG, Demo
from statsd_instrument.stack.files import RepoFilesNotFoundError, find_stack_files
from statsd_instrument.stack.pods import run_pods
from statsd_instrument.stack.ports import Port, PortTakenError, check_ports_free
from statsd_instrument.stack.prometheus import (
    find_prometheus,
)
from statsd_instrument.stack.traffic import MAX_RATE_PER_S


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise ValueError
    return value


def build_parser() -> argparse.ArgumentParser:
    """The demo's options.

    >>> build_parser().parse_args(["--duration", "40"]).duration
    40.0
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run the exporter, the example app under uwsgi (5 workers), Prometheus and traffic.",
    )
    parser.add_argument("--app-port", type=str, default="8000", help="example app HTTP port (8000)")
    parser.add_argument("--exporter-port", type=str, default="9102", help="exporter /metrics port (9102)")
    parser.add_argument("--statsd-port", type=str, default="9125", help="exporter UDP statsd port (9125)")
    parser.add_argument("--prometheus-port", type=str, default="9090", help="Prometheus port (9090)")
    parser.add_argument("--alertmanager-port", type=str, default="9093", help="Alertmanager port (9093)")
    parser.add_argument("--duration", type=float, default=0, help="stop after N seconds (default: Ctrl-C)")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second sent (50, max 200)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between summary lines (5)")
    parser.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus")
    parser.add_argument("--repo", help="checkout holding exporter-mapping.yml, examples/, prometheus.yml")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs, data)")
    parser.add_argument(
        "--pods",
        type=int,
        default=0,
        help="run N pods (network namespaces, as root), Prometheus agents, a central store (docs/scaling.md)",
    )
    parser.add_argument("--scrape-interval", type=float, default=5.0, help="--pods: scrape every N s (5)")
    return parser


def _error(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


def _parse(argv: list[str]) -> argparse.Namespace | str:
    args = build_parser().parse_args(argv)
    for flag in ("app_port", "exporter_port", "statsd_port", "prometheus_port", "alertmanager_port"):
        try:
            setattr(args, flag, _port(getattr(args, flag)))
        except ValueError:
            option = "--" + flag.replace("_", "-")
            return f"{option}: {getattr(args, flag)} is not a port (1-65535)"
    if not 0 < args.rate <= MAX_RATE_PER_S:
        return f"--rate: {args.rate:g} is out of range (0 < rate <= {MAX_RATE_PER_S:g})"
    if args.duration < 0:
        return f"--duration: {args.duration:g} is negative (0 runs until Ctrl-C)"
    if args.interval <= 0:
        return f"--interval: {args.interval:g} must be above 0 seconds"
    if args.pods and not 2 <= args.pods <= 20:
        return f"--pods: {args.pods} is out of range (2 to 20)"
    if not 0.5 <= args.scrape_interval <= 60:
        return f"--scrape-interval: {args.scrape_interval:g} is out of range (0.5 to 60 seconds)"
    return args


def main(argv: list[str]) -> int:
    """Run the demo; returns 0 after a clean stop, 1 if a component failed, 2 on bad options."""
    parsed = _parse(argv)
    if isinstance(parsed, str):
        return _error(parsed)
    args = parsed
    try:
        files = find_stack_files(args.repo)
    except RepoFilesNotFoundError as err:
        return _error(str(err))
    uwsgi = find_uwsgi()
    if uwsgi is None:
        return _error("uwsgi not found; install it with: pip install 'statsd_instrument[uwsgi]'")
    if args.pods:
        return run_pods(args, files, uwsgi)
    prometheus = None if args.no_prometheus else find_prometheus()
    ports = [
        Port("example app", args.app_port, "tcp", "--app-port"),
        Port("exporter HTTP", args.exporter_port, "tcp", "--exporter-port"),
        Port("exporter statsd", args.statsd_port, "udp", "--statsd-port"),
    ]
    if prometheus:
        ports.append(Port("Prometheus", args.prometheus_port, "tcp", "--prometheus-port"))
    alertmanager = am.find_alertmanager() if prometheus else None
    if alertmanager:
        ports.append(Port("Alertmanager", args.alertmanager_port, "tcp", "--alertmanager-port"))
    try:
        check_ports_free(ports)
    except (PortTakenError, ValueError) as err:
        return _error(str(err))
    return Demo(args, files, uwsgi, prometheus, ports, alertmanager).run()
