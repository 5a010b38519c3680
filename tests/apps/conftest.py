"""The apps are served by real uwsgi/gunicorn processes; importing them in the test process (doctest
collection) would emit metrics and reconfigure the module-level client, so pytest skips them."""

from __future__ import annotations

collect_ignore_glob = ["*_app.py"]
