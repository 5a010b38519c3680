"""Example Flask app from the article this project grew from, instrumented with one line.

``/test/`` answers ``rest``; ``/test1/`` raises ``ZeroDivisionError``, answered as a 500 by an error handler;
``/user/<int:user_id>`` is a parametrised route; ``/health`` is excluded from metrics. Run it under uwsgi
(``uwsgi --ini uwsgi.ini --http-socket 127.0.0.1:8000``); metrics go to ``STATSD_HOST:STATSD_PORT``
(default 127.0.0.1:9125). ``STATSD_INSTRUMENT=0`` serves the same app without metrics (for benchmarks).
"""

from __future__ import annotations

import os

from flask import Flask

from statsd_instrument.flask import StatsdInstrument, exempt

app = Flask(__name__)
app.config["STATSD_SERVICE"] = os.environ.get("STATSD_SERVICE", "flask_app")
app.config["STATSD_APP_VERSION"] = os.environ.get("APP_VERSION", "1.0.0")


@app.route("/test/")
def test():
    return "rest"


@app.route("/test1/")
def test1():
    1 / 0  # noqa: B018 - the article's deliberate failure
    return "never"


@app.route("/user/<int:user_id>")
def user(user_id: int):
    return {"user_id": user_id}


@app.route("/health")
@exempt
def health():
    return "ok"


@app.errorhandler(ZeroDivisionError)
def division_error(error: ZeroDivisionError):
    return "internal error", 500


if os.environ.get("STATSD_INSTRUMENT", "1") != "0":
    StatsdInstrument(app)
