"""Native Alertmanager for the stack: a config derived from the shipped ``alertmanager/alertmanager.yml``.

The shipped file routes to a webhook (the compose ``alert-receiver`` service), Slack and email, whose
secrets live in files only a deployment has. Natively :func:`derive_config` keeps its route tree, grouping
and inhibition rules, and gives every receiver one integration only: a webhook to a local
:class:`~statsd_instrument.stack.alert_receiver.AlertReceiver` (nothing leaves 127.0.0.1). The demo and the
tests may shorten its timers (``group_wait`` ...), which are hours in production.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import yaml

from statsd_instrument.stack.alert_receiver import Notification

#: route timers :func:`derive_config` can override (on the top route and on every route that sets its own)
ROUTE_TIMERS = ("group_wait", "group_interval", "repeat_interval")
TIMERS = (*ROUTE_TIMERS, "resolve_timeout")


def derive_config(
    shipped: Path, out_dir: Path, webhook_url: str, *, timers: dict[str, str] | None = None
) -> Path:
    """Write ``out_dir/alertmanager.yml``: the shipped routing, every receiver a webhook to ``webhook_url``.

    ``timers`` overrides ``group_wait``/``group_interval``/``repeat_interval`` throughout the route tree and
    ``resolve_timeout`` in ``global``. Returns the path written.

    >>> import tempfile
    >>> from statsd_instrument.stack.files import find_stack_files
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     shipped = find_stack_files().alertmanager_yml
    ...     path = derive_config(shipped, Path(tmp), "http://127.0.0.1:1/alerts", timers={"group_wait": "1s"})
    ...     config = yaml.safe_load(path.read_text())
    >>> [(r["name"], r["webhook_configs"][0]["url"]) for r in config["receivers"]]
    [('page', 'http://127.0.0.1:1/alerts'), ('ticket', 'http://127.0.0.1:1/alerts')]
    >>> sorted(config["global"]), config["route"]["group_wait"], config["route"]["routes"][0]["group_wait"]
    (['resolve_timeout'], '1s', '1s')
    """
    config: dict[str, Any] = yaml.safe_load(shipped.read_text())
    timers = dict(timers or {})
    unknown = set(timers) - set(TIMERS)
    if unknown:
        raise ValueError(f"timers: {', '.join(sorted(unknown))} is not one of {', '.join(TIMERS)}")
    # the SMTP/Slack settings in global are for integrations the derived config no longer has
    config["global"] = {
        "resolve_timeout": timers.pop("resolve_timeout", None) or config["global"]["resolve_timeout"]
    }
    config["receivers"] = [
        {"name": receiver["name"], "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}
        for receiver in config["receivers"]
    ]
    pending = [config["route"]]
    while pending:
        route = pending.pop()
        for name, value in timers.items():
            if route is config["route"] or name in route:
                route[name] = value
        pending += route.get("routes", [])
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "alertmanager.yml"
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def find_alertmanager() -> str | None:
    """Path of Alertmanager on PATH (Debian's package names it ``prometheus-alertmanager``), or None."""
    path = os.environ.get("PATH")
    return shutil.which("prometheus-alertmanager", path=path) or shutil.which("alertmanager", path=path)


def alertmanager_argv(binary: str, config: Path, storage_dir: Path, port: int) -> list[str]:
    """Command line of a single Alertmanager bound to 127.0.0.1:``port`` (clustering off: no gossip port).

    >>> alertmanager_argv("alertmanager", Path("/t/am.yml"), Path("/t/am"), 9093)[1:4]
    ['--config.file=/t/am.yml', '--storage.path=/t/am', '--web.listen-address=127.0.0.1:9093']
    """
    return [
        binary,
        f"--config.file={config}",
        f"--storage.path={storage_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]


#: the demo's timers: the first notification of a group within seconds (production waits 10-30 s)
DEMO_TIMERS = {"group_wait": "5s", "group_interval": "30s"}


def delivered_summary(notifications: Sequence[Notification]) -> str:
    """What reached the receiver so far: the latest status of each alert group, per Alertmanager receiver.

    >>> page = Notification("page", "firing", {}, [{"labels": {"alertname": "FastBurn"}}])
    >>> delivered_summary([page, Notification("page", "resolved", page.group_labels, page.alerts)])
    'delivered: FastBurn resolved -> page'
    >>> delivered_summary([])
    ''
    """
    latest: dict[tuple[str, str], str] = {}
    for n in notifications:
        latest[(" ".join(sorted(n.alertnames)) or "?", n.receiver)] = n.status
    return (
        "delivered: " + ", ".join(f"{names} {status} -> {to}" for (names, to), status in latest.items())
        if latest
        else ""
    )


def delivery_report(notifications: Sequence[Notification], started_at: float) -> str:
    """The demo's last word on alerts: how many notifications the webhook receiver got, and which.

    >>> n = Notification("ticket", "firing", {}, [{"labels": {"alertname": "SlowBurn"}}], received_at=17.2)
    >>> delivery_report([n], started_at=0.0)
    'alerts: 1 notification delivered to the webhook receiver: SlowBurn firing -> ticket at 17 s'
    >>> delivery_report([], started_at=0.0)
    'alerts: no notification delivered to the webhook receiver (no alert fired long enough)'
    """
    if not notifications:
        return "alerts: no notification delivered to the webhook receiver (no alert fired long enough)"
    items = [
        f"{' '.join(sorted(n.alertnames))} {n.status} -> {n.receiver} at {n.received_at - started_at:.0f} s"
        for n in notifications
    ]
    plural = "s" if len(items) > 1 else ""
    return f"alerts: {len(items)} notification{plural} delivered to the webhook receiver: {'; '.join(items)}"
