"""The example Flask app instrumented with prometheus_flask_exporter in its uwsgi multiprocess mode.

For ``bench_flask`` only: the same routes as ``examples/flask_app/app.py`` (imported with
``STATSD_INSTRUMENT=0``), metrics kept by prometheus_client's multiprocess files in
``PROMETHEUS_MULTIPROC_DIR`` and served by the uwsgi master on ``PFE_METRICS_PORT``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ["STATSD_INSTRUMENT"] = "0"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "flask_app"))

from app import app
from prometheus_flask_exporter.multiprocess import UWsgiPrometheusMetrics

metrics = UWsgiPrometheusMetrics(app)
metrics.start_http_server(int(os.environ["PFE_METRICS_PORT"]), host="127.0.0.1")
