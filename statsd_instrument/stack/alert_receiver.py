"""A tiny Alertmanager webhook receiver: it records every notification it is sent and prints one line each.

Alertmanager POSTs one JSON document per notification (webhook payload version 4: ``receiver``, ``status``,
``groupLabels``, ``alerts`` ...). The native demo and the tests run :class:`AlertReceiver` in a thread on
127.0.0.1 and read what arrived; the compose bundle runs this very file in a stock Python image (it uses the
standard library only and imports nothing from the package) as the ``alert-receiver`` service, whose log
shows each delivery.

>>> import json, urllib.request
>>> with AlertReceiver() as receiver:
...     body = {"receiver": "page", "status": "firing", "groupLabels": {"alertname": "X"},
...             "alerts": [{"status": "firing", "labels": {"alertname": "X", "service": "shop"}}]}
...     request = urllib.request.Request(receiver.url, data=json.dumps(body).encode(), method="POST")
...     urllib.request.urlopen(request, timeout=5).status
...     print(receiver.notifications()[0].line())
200
firing to page: X {alertname=X} (1 alert: X service=shop)
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, TextIO

#: where Alertmanager posts (the webhook ``url`` in alertmanager.yml ends with it)
PATH = "/alerts"
MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class Notification:
    """One webhook call: to which receiver, firing or resolved, the group's labels and its alerts."""

    receiver: str
    status: str
    group_labels: dict[str, str]
    alerts: list[dict[str, Any]]
    received_at: float = field(default_factory=time.time)

    @property
    def alertnames(self) -> set[str]:
        return {alert.get("labels", {}).get("alertname", "") for alert in self.alerts}

    def line(self) -> str:
        group = ",".join(f"{k}={v}" for k, v in sorted(self.group_labels.items()))
        shown = "; ".join(
            " ".join(
                [alert["labels"].get("alertname", "?")]
                + [f"{k}={v}" for k, v in sorted(alert["labels"].items()) if k == "service"]
            )
            for alert in self.alerts[:3]
        )
        count = f"{len(self.alerts)} alert{'s' if len(self.alerts) != 1 else ''}"
        names = " ".join(sorted(self.alertnames))
        return f"{self.status} to {self.receiver}: {names} {{{group}}} ({count}: {shown})"


def parse_notification(body: bytes) -> Notification:
    """A webhook body as a :class:`Notification`; ValueError naming what is wrong otherwise.

    >>> parse_notification(b'{"status": "firing"}')
    Traceback (most recent call last):
    ...
    ValueError: not an Alertmanager webhook payload: 'alerts' is missing or not a list
    """
    try:
        doc = json.loads(body)
    except ValueError as err:
        raise ValueError(f"not JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ValueError("not an Alertmanager webhook payload: not a JSON object")
    alerts = doc.get("alerts")
    if not isinstance(alerts, list) or not all(isinstance(a, dict) for a in alerts):
        raise ValueError("not an Alertmanager webhook payload: 'alerts' is missing or not a list")
    for alert in alerts:
        alert.setdefault("labels", {})
    return Notification(
        receiver=str(doc.get("receiver", "")),
        status=str(doc.get("status", "")),
        group_labels=dict(doc.get("groupLabels") or {}),
        alerts=alerts,
    )


class AlertReceiver:
    """An HTTP server on ``host:port`` (0: any free port) in a daemon thread, keeping every notification.

    ``out`` (a stream) gets one line per notification. Use as a context manager, or ``start()``/``stop()``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, out: TextIO | None = None) -> None:
        self._notifications: list[Notification] = []
        self._lock = threading.Lock()
        self._out = out
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.host, self.port = self._server.socket.getsockname()[:2]

    @property
    def url(self) -> str:
        """The webhook URL to give Alertmanager."""
        return f"http://{self.host}:{self.port}{PATH}"

    def start(self) -> AlertReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def __enter__(self) -> AlertReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def notifications(self) -> list[Notification]:
        """Every notification received so far, oldest first."""
        with self._lock:
            return list(self._notifications)

    def wait_for(
        self, predicate: Callable[[Notification], bool], timeout_s: float, since: int = 0
    ) -> Notification | None:
        """The first notification (from index ``since`` on) matching ``predicate``, waiting up to
        ``timeout_s``; None if none came."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = next((n for n in self.notifications()[since:] if predicate(n)), None)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.1)

    def _record(self, notification: Notification) -> None:
        with self._lock:
            self._notifications.append(notification)
        if self._out is not None:
            print(time.strftime("%H:%M:%S ") + notification.line(), file=self._out, flush=True)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(200 if self.path == "/health" else 404, "ok" if self.path == "/health" else "")

            def do_POST(self) -> None:
                if self.path != PATH:
                    self._answer(404, f"POST to {PATH}")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= MAX_BODY_BYTES:
                    self._answer(400, f"Content-Length {length} is not in 1..{MAX_BODY_BYTES}")
                    return
                try:
                    notification = parse_notification(self.rfile.read(length))
                except ValueError as err:
                    self._answer(400, str(err))
                    return
                receiver._record(notification)
                self._answer(200, "ok")

            def _answer(self, status: int, text: str) -> None:
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per notification
                pass

        return Handler


def main(argv: list[str] | None = None) -> int:
    """``python alert_receiver.py --listen HOST:PORT``: serve until interrupted, one line per notification."""
    parser = argparse.ArgumentParser(description="Alertmanager webhook receiver: prints each notification.")
    parser.add_argument("--listen", default="127.0.0.1:9095", help="HOST:PORT (':9095' = every interface)")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        parser.error(f"--listen: {args.listen!r} is not HOST:PORT")
    receiver = AlertReceiver(host, int(port), out=sys.stdout).start()
    print(f"alert receiver: POST {PATH} on {args.listen}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
