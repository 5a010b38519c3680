"""The example Flask app instrumented with prometheus_flask_exporter in its multiprocess mode.

For ``bench_flask`` only: the same routes as ``examples/flask_app/app.py`` (imported with
``STATSD_INSTRUMENT=0``), metrics kept by prometheus_client's multiprocess files in
``PROMETHEUS_MULTIPROC_DIR``; under uwsgi served by the master on ``PFE_METRICS_PORT``, under gunicorn
(``PFE_SERVER=gunicorn``) by each worker's own ``/metrics`` route.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ["STATSD_INSTRUMENT"] = "0"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "flask_app"))

from app import app
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics, UWsgiPrometheusMetrics

if os.environ.get("PFE_SERVER") == "gunicorn":
    metrics = GunicornInternalPrometheusMetrics(app)
else:
    metrics = UWsgiPrometheusMetrics(app)
    metrics.start_http_server(int(os.environ["PFE_METRICS_PORT"]), host="127.0.0.1")
