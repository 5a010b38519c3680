"""The demo's run: start the exporter, the example app under uwsgi, Prometheus and Alertmanager when
installed, and the traffic; print what Prometheus sees; stop everything started, by pid.

:mod:`statsd_instrument.demo` (the command line) builds a :class:`Demo`, or, with ``--pods``, the
:class:`~statsd_instrument.stack.pods.PodsDemo` built on it.
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
from statsd_instrument.stack.commands import app_argv, exporter_argv
from statsd_instrument.stack.files import StackFiles
from statsd_instrument.stack.ports import port_is_free
from statsd_instrument.stack.processes import Child, StartupError, wait_for_http_ok, wait_for_tcp
from statsd_instrument.stack.prometheus import (
    PrometheusAPI,
    derive_config,
    prometheus_argv,
)
from statsd_instrument.stack.traffic import Traffic

PROG = "statsd-instrument demo"


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
