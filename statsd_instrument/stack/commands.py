"""Command lines of the native stack's components, shared by the demo and the end-to-end tests.

The exporter is this package's emulation (``python -m statsd_instrument.cli exporter``, the flags of the real
statsd_exporter); the example app runs under uwsgi from the same virtualenv as the running interpreter.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def exporter_argv(mapping: Path, statsd_port: int, web_port: int, web_host: str = "127.0.0.1") -> list[str]:
    """The embedded exporter: UDP statsd on 127.0.0.1:``statsd_port``, /metrics on ``web_host:web_port``.

    >>> exporter_argv(Path("m.yml"), 9125, 9102)[3:]  # doctest: +NORMALIZE_WHITESPACE
    ['exporter', '--statsd.listen-udp=127.0.0.1:9125', '--statsd.listen-tcp=',
     '--web.listen-address=127.0.0.1:9102', '--statsd.mapping-config=m.yml']
    """
    return [
        sys.executable,
        "-m",
        "statsd_instrument.cli",
        "exporter",
        f"--statsd.listen-udp=127.0.0.1:{statsd_port}",
        "--statsd.listen-tcp=",
        f"--web.listen-address={web_host}:{web_port}",
        f"--statsd.mapping-config={mapping}",
    ]


def find_uwsgi() -> str | None:
    """uwsgi next to the running interpreter (the virtualenv's, as ``make venv`` installs it), else on PATH.

    >>> find_uwsgi() is None or find_uwsgi().endswith("uwsgi")
    True
    """
    beside = Path(sys.executable).parent / "uwsgi"
    return str(beside) if beside.exists() else shutil.which("uwsgi")


def app_argv(uwsgi: str, uwsgi_ini: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    """The example app under uwsgi (its ini: master + 5 workers) serving HTTP on ``host:port``.

    Inside a virtualenv, uwsgi is told so, so the app imports flask and statsd_instrument from it.

    >>> app_argv("uwsgi", Path("uwsgi.ini"), 8000)[:5]
    ['uwsgi', '--ini', 'uwsgi.ini', '--http-socket', '127.0.0.1:8000']
    """
    argv = [uwsgi, "--ini", str(uwsgi_ini), "--http-socket", f"{host}:{port}"]
    if sys.prefix != sys.base_prefix:
        argv += ["--virtualenv", sys.prefix]
    return argv
