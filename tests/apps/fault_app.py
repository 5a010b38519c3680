"""The app of the fault-injection tests (tests/test_faults.py), served by real uwsgi with 5 workers.

``GET /work`` answers at once and ``GET /slow?s=N`` after N seconds (the harakiri test kills a worker in
it); both are counted by the Flask integration (``http_requests_total{service="faults"}`` through the
shipped mapping). ``GET /pid`` (exempt from metrics) answers the worker's pid. At exit each process writes
its client's counters to ``$FAULTS_STATS_DIR/<pid>.json`` after a last flush: what the client itself
counted as sent and dropped.
"""

from __future__ import annotations

import atexit
import json
import os
import time

from flask import Flask, request

from statsd_instrument import statsd
from statsd_instrument.flask import StatsdInstrument, exempt

app = Flask(__name__)
app.config["STATSD_SERVICE"] = "faults"
StatsdInstrument(app)


@app.route("/work")
def work():
    return "ok"


@app.route("/slow")
def slow():
    time.sleep(float(request.args.get("s", "1")))
    return "slow"


@app.route("/pid")
@exempt
def pid():
    return str(os.getpid())


def write_client_stats() -> None:
    stats_dir = os.environ.get("FAULTS_STATS_DIR")
    if not stats_dir:
        return
    statsd.flush()
    with open(os.path.join(stats_dir, f"{os.getpid()}.json"), "w") as out:
        json.dump(statsd.stats, out)


atexit.register(write_client_stats)
