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
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from statsd_instrument.stack import alertmanager as am
from statsd_instrument.stack import summary as live
from statsd_instrument.stack.alert_receiver import AlertReceiver
from statsd_instrument.stack.commands import app_argv, exporter_argv, find_uwsgi
from statsd_instrument.stack.files import RepoFilesNotFoundError, StackFiles, find_stack_files
from statsd_instrument.stack.ports import Port, PortTakenError, check_ports_free, port_is_free
from statsd_instrument.stack.processes import Child, StartupError, wait_for_http_ok, wait_for_tcp
from statsd_instrument.stack.prometheus import (
    PrometheusAPI,
    derive_config,
    find_prometheus,
    prometheus_argv,
)
from statsd_instrument.stack.traffic import MAX_RATE_PER_S, Traffic

PROG = "statsd-instrument demo"


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
        from statsd_instrument.stack.pods import run_pods  # imports this module: not at the top

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


class Demo:
    """The started components and the loop printing the summary (``main`` builds and runs it)."""

    def __init__(
        self,
        args: argparse.Namespace,
        files: StackFiles,
        uwsgi: str,
        prometheus: str | None,
        ports: list,
        alertmanager: str | None = None,
    ) -> None:
        self.args = args
        self.files = files
        self.uwsgi = uwsgi
        self.prometheus = prometheus
        self.ports = ports
        self.children: list[Child] = []
        self.traffic: Traffic | None = None
        self.alertmanager = alertmanager
        self.receiver: AlertReceiver | None = None  # the webhook Alertmanager delivers to
        self.traffic_started = time.time()
        self.workdir = Path(tempfile.mkdtemp(prefix="statsd-instrument-demo-"))
        self.say: Callable[[str], None] = lambda text: print(text, flush=True)

    def run(self) -> int:
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        if in_main_thread:
            signal.signal(signal.SIGTERM, self._on_sigterm)
        failed = False
        try:
            self._start()
            self._loop()
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see _on_sigterm)
            self.say("\nstopping ...")
        except StartupError as err:
            failed = True
            print(f"{PROG}: {err}", file=sys.stderr)
        finally:
            if in_main_thread:  # a second Ctrl-C must not cut the clean-up short
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                self._stop_all()
            finally:
                if in_main_thread:
                    for sig, handler in previous.items():
                        signal.signal(sig, handler)
        left = [p for p in self.ports if not port_is_free(p.number, p.protocol)]
        if left:
            print(
                f"{PROG}: still in use after stopping: {', '.join(str(p.number) for p in left)}",
                file=sys.stderr,
            )
        else:
            if self.receiver is not None and self.traffic is not None:
                self.say(am.delivery_report(self.receiver.notifications(), self.traffic_started))
            self.say(
                f"stopped {len(self.children)} processes by pid; nothing left listening on the demo's ports"
            )
        if failed or self.args.keep:
            self.say(f"logs and configs kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return 1 if failed or left else 0

    def _on_sigterm(self, signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # stop like Ctrl-C

    def _start(self) -> None:
        a = self.args
        self.say(
            f"statsd_instrument demo, running from the stack files in {self.files.root} "
            f"(work dir {self.workdir})"
        )
        exporter = self._spawn("exporter", exporter_argv(self.files.mapping, a.statsd_port, a.exporter_port))
        wait_for_tcp(exporter, a.exporter_port)
        app = self._spawn(
            "uwsgi (example app, 5 workers)",
            app_argv(self.uwsgi, self.files.uwsgi_ini, a.app_port),
            env={"STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(a.statsd_port)},
        )
        wait_for_tcp(app, a.app_port)
        wait_for_http_ok(app, f"http://127.0.0.1:{a.app_port}/health")
        if self.alertmanager:
            self._start_alertmanager()
        if self.prometheus:
            config = derive_config(
                self.files.prometheus_yml,
                self.workdir,
                f"127.0.0.1:{a.exporter_port}",
                alertmanager_target=f"127.0.0.1:{a.alertmanager_port}" if self.alertmanager else None,
            )
            prom = self._spawn(
                "prometheus",
                prometheus_argv(self.prometheus, config, self.workdir / "prometheus-data", a.prometheus_port),
            )
            wait_for_http_ok(prom, f"http://127.0.0.1:{a.prometheus_port}/-/ready", timeout_s=60)
        self.traffic = Traffic(f"http://127.0.0.1:{a.app_port}", rate_per_s=a.rate).start()
        self.traffic_started = time.time()
        self._where_to_look()

    def _start_alertmanager(self) -> None:
        """Alertmanager on --alertmanager-port, delivering to the demo's webhook receiver."""
        assert self.alertmanager is not None
        a = self.args
        self.receiver = AlertReceiver().start()
        am_config = am.derive_config(
            self.files.alertmanager_yml, self.workdir, self.receiver.url, timers=am.DEMO_TIMERS
        )
        argv = am.alertmanager_argv(
            self.alertmanager, am_config, self.workdir / "alertmanager-data", a.alertmanager_port
        )
        alertmanager = self._spawn("alertmanager", argv)
        wait_for_http_ok(alertmanager, f"http://127.0.0.1:{a.alertmanager_port}/-/ready")

    def _spawn(self, name: str, argv: list[str], env: dict | None = None) -> Child:
        log = self.workdir / (name.split(" ")[0] + ".log")
        child = Child(name, argv, log, env=env, cwd=self.files.root)
        self.children.append(child)
        return child

    def _where_to_look(self) -> None:
        a = self.args
        lines = [
            f"  app         http://127.0.0.1:{a.app_port}/test/  (uwsgi, 5 workers; {a.rate:g} req/s sent)",
            f"  exporter    http://127.0.0.1:{a.exporter_port}/metrics  (statsd UDP port {a.statsd_port})",
        ]
        if self.prometheus:
            p = f"http://127.0.0.1:{a.prometheus_port}"
            lines += [
                f"  Prometheus  {p}/graph   rules {p}/rules   alerts {p}/alerts",
                f"    try: {live.QUERIES['p99']}",
            ]
            if self.receiver is not None:
                lines.append(
                    f"  Alertmanager http://127.0.0.1:{a.alertmanager_port}/#/alerts  (shipped routing; every"
                    f" receiver a webhook to {self.receiver.url}; group_wait {am.DEMO_TIMERS['group_wait']})"
                )
            else:
                lines.append("  Alertmanager not installed, so not started (Debian: prometheus-alertmanager)")
        else:
            lines.append(
                "  Prometheus  not installed, so not started (Debian: apt-get install prometheus; `make demo`"
                " as root installs it): figures below come from the exporter"
                if not self.args.no_prometheus
                else "  Prometheus  not started (--no-prometheus): figures below come from the exporter"
            )
        until = f"for {a.duration:g} s" if a.duration else "until Ctrl-C"
        self.say("running " + until + ":\n" + "\n".join(lines))

    def _loop(self) -> None:
        a = self.args
        started = time.monotonic()
        next_line = started + a.interval
        api = PrometheusAPI(f"http://127.0.0.1:{a.prometheus_port}") if self.prometheus else None
        while not a.duration or time.monotonic() - started < a.duration:
            for child in self.children:
                if not child.running():
                    raise child.failed(f"exited unexpectedly with code {child.proc.returncode}")
            if time.monotonic() >= next_line:
                next_line += a.interval
                self._print_summary(api, time.monotonic() - started)
            time.sleep(0.2)
        self._final_count(api)

    def _reading(self, api: PrometheusAPI | None) -> live.Summary:
        if api:
            return live.from_prometheus(api)
        return live.from_exporter(f"http://127.0.0.1:{self.args.exporter_port}/metrics")

    def _final_count(self, api: PrometheusAPI | None, timeout_s: float = 15.0) -> None:
        """Stop the traffic, wait for the last scrapes, and compare what was counted with what was sent."""
        assert self.traffic is not None
        sent = self.traffic.stop()
        where = "Prometheus" if api else "the exporter"
        deadline = time.monotonic() + timeout_s
        counted = self._reading(api).requests
        while counted != sent.answered and time.monotonic() < deadline:
            time.sleep(0.5)
            counted = self._reading(api).requests
        if counted == sent.answered:
            self.say(
                f"final: {sent.answered} requests answered, {sent.answered} counted by {where}: every one"
            )
        else:
            shown = "n/a" if counted is None else f"{counted:.0f}"
            self.say(
                f"final: {sent.answered} requests answered, {shown} counted by {where} after {timeout_s:g} s"
            )

    def _print_summary(self, api: PrometheusAPI | None, elapsed_s: float) -> None:
        reading = self._reading(api)
        sent = self.traffic.stats() if self.traffic else None
        client = ""
        if sent is not None:
            client = f" | sent {sent.answered} ({sent.server_errors} x 5xx, {sent.no_answer} unanswered)"
        delivered = am.delivered_summary(self.receiver.notifications()) if self.receiver else ""
        self.say(f"{elapsed_s:6.0f}s {reading.line()}{' | ' + delivered if delivered else ''}{client}")

    def _stop_all(self) -> None:
        if self.traffic is not None:
            self.traffic.stop()
        for child in reversed(self.children):  # Prometheus, Alertmanager, the app, then the exporter
            child.stop()
        if self.receiver is not None:
            self.receiver.stop()
