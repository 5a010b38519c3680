"""Native Prometheus for the stack: a config derived from the shipped ``prometheus.yml``, and its HTTP API.

The shipped file scrapes ``statsd-exporter:9102`` and alerts ``alertmanager:9093`` (the compose services).
Natively the exporter listens on 127.0.0.1:<port>, so :func:`derive_config` rewrites the exporter job's
targets and the Alertmanager's (or drops the ``alerting`` block when none runs), makes the rule file paths
absolute (they are relative to the shipped file) and can shorten the intervals for tests.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Sequence

import yaml

#: the job in the shipped prometheus.yml whose targets are the exporter
EXPORTER_JOB = "statsd-exporter"


def derive_config(
    shipped: Path,
    out_dir: Path,
    exporter_target: str,
    *,
    scrape_interval: str | None = None,
    evaluation_interval: str | None = None,
    rule_files: Sequence[Path] | None = None,
    alertmanager_target: str | None = None,
) -> Path:
    """Write ``out_dir/prometheus.yml``: the shipped config scraping ``exporter_target`` instead.

    Alerts go to ``alertmanager_target`` (host:port); without one the config sends them nowhere.

    Rule files stay the shipped ones (absolute paths) unless ``rule_files`` replaces them; the intervals
    stay as shipped unless given. Returns the path written.

    >>> import tempfile
    >>> from statsd_instrument.stack.files import find_stack_files
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = derive_config(find_stack_files().prometheus_yml, Path(tmp), "127.0.0.1:19102")
    ...     config = yaml.safe_load(path.read_text())
    >>> config["scrape_configs"][0]["static_configs"][0]["targets"]
    ['127.0.0.1:19102']
    >>> all(Path(p).is_absolute() for p in config["rule_files"])
    True
    >>> "alerting" in config
    False
    """
    config: dict[str, Any] = yaml.safe_load(shipped.read_text())
    jobs = [job for job in config.get("scrape_configs", []) if job.get("job_name") == EXPORTER_JOB]
    if not jobs:
        raise ValueError(f"{shipped}: no scrape job named {EXPORTER_JOB!r} to point at {exporter_target}")
    config["scrape_configs"] = jobs  # only the exporter: other targets are compose hostnames
    for job in jobs:
        job["static_configs"] = [{"targets": [exporter_target]}]
        if scrape_interval:
            job["scrape_interval"] = scrape_interval
            job.pop("scrape_timeout", None)
    glob = config.setdefault("global", {})
    if scrape_interval:
        glob["scrape_interval"] = scrape_interval
        glob.pop("scrape_timeout", None)
    if evaluation_interval:
        glob["evaluation_interval"] = evaluation_interval
    if alertmanager_target:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_target]}]}]}
    else:
        config.pop("alerting", None)  # the shipped target is a compose hostname
    if rule_files is not None:
        config["rule_files"] = [str(Path(p).resolve()) for p in rule_files]
    else:
        config["rule_files"] = [str(shipped.parent.resolve() / p) for p in config.get("rule_files", [])]
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "prometheus.yml"
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def find_prometheus() -> str | None:
    """Path of the ``prometheus`` binary on PATH (Debian package ``prometheus``), or None."""
    return shutil.which("prometheus", path=os.environ.get("PATH"))


def prometheus_argv(binary: str, config: Path, storage_dir: Path, port: int) -> list[str]:
    """Command line of a Prometheus bound to 127.0.0.1:``port`` with its own storage directory.

    >>> prometheus_argv("prometheus", Path("/t/p.yml"), Path("/t/data"), 9090)[1:3]
    ['--config.file=/t/p.yml', '--storage.tsdb.path=/t/data']
    """
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={storage_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
    ]


class PromQLError(RuntimeError):
    """Prometheus rejected a query or could not be reached; the message holds its error."""


class PrometheusAPI:
    """The few calls of Prometheus' HTTP API the stack needs.

    >>> api = PrometheusAPI("http://127.0.0.1:9")
    >>> api.base_url
    'http://127.0.0.1:9'
    """

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _get(self, path: str, **params: str) -> Any:
        url = f"{self.base_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as err:  # 400/422: the body says why
            try:
                body = json.loads(err.read())
            except ValueError:
                raise PromQLError(f"GET {url}: HTTP {err.code}") from err
            finally:
                err.close()
        except (OSError, ValueError) as err:
            raise PromQLError(f"GET {url}: {err}") from err
        if body.get("status") != "success":
            raise PromQLError(f"{params.get('query', path)!r}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[tuple[dict[str, str], float]]:
        """Instant query (now, or at unix time ``at``): [(labels, value)] of a vector or scalar result."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        data = self._get("/api/v1/query", **params)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def raw_samples(self, selector: str, window_s: float, at: float) -> list[tuple[dict[str, str], list]]:
        """Stored samples of ``selector`` in the ``window_s`` seconds up to ``at``: [(labels, [(t, v)])]."""
        data = self._get("/api/v1/query", query=f"{selector}[{round(window_s * 1000)}ms]", time=f"{at:.3f}")
        return [
            (item["metric"], [(float(t), float(v)) for t, v in item["values"]]) for item in data["result"]
        ]

    def query_range(
        self, expr: str, start: float, end: float, step_s: float
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """Range query: [(labels, [(timestamp, value)])]."""
        data = self._get("/api/v1/query_range", query=expr, start=str(start), end=str(end), step=str(step_s))
        return [
            (item["metric"], [(float(t), float(v)) for t, v in item["values"]]) for item in data["result"]
        ]

    def scalar(self, expr: str, at: float | None = None) -> float | None:
        """The single value of ``expr`` (``sum(...)``-style), or None if it has no data or is NaN."""
        result = self.query(expr, at)
        if not result or math.isnan(result[0][1]):
            return None
        return result[0][1]

    def firing_alerts(self) -> list[dict[str, Any]]:
        """Alerts in state ``firing``, each with its ``labels`` and ``annotations``."""
        return [a for a in self._get("/api/v1/alerts")["alerts"] or [] if a.get("state") == "firing"]

    def targets_up(self) -> int:
        """How many scrape targets are up."""
        return sum(1 for t in self._get("/api/v1/targets")["activeTargets"] if t.get("health") == "up")
