"""Locate the files the native stack runs from: the mapping, the example app, prometheus.yml and rules,
alertmanager.yml.

They are the top-level files of a checkout (``pip install -e .`` or ``make demo``); an installed wheel carries
a copy of them under ``statsd_instrument/_stack`` (``setup.py`` copies them at build time, so the top-level
files stay the one source). Looked for in this order: ``--repo DIR``; the checkout the package was imported
from; the wheel's copy; the current directory and its parents.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: files a checkout must have for the demo, relative to its top
REQUIRED = (
    "exporter-mapping.yml",
    "prometheus.yml",
    "alertmanager/alertmanager.yml",
    "examples/flask_app/app.py",
    "examples/flask_app/uwsgi.ini",
)


#: where a wheel carries its copy of the stack files (see setup.py)
PACKAGED_STACK = Path(__file__).resolve().parents[1] / "_stack"


class RepoFilesNotFoundError(RuntimeError):
    """The shipped stack files could not be found; the message says where it looked."""


@dataclass(frozen=True)
class StackFiles:
    """Paths of the shipped files one checkout provides.

    >>> files = find_stack_files()
    >>> files.mapping.name, files.uwsgi_ini.name
    ('exporter-mapping.yml', 'uwsgi.ini')
    """

    root: Path

    @property
    def mapping(self) -> Path:
        return self.root / "exporter-mapping.yml"

    @property
    def prometheus_yml(self) -> Path:
        return self.root / "prometheus.yml"

    @property
    def rules_dir(self) -> Path:
        return self.root / "prometheus" / "rules"

    @property
    def kubernetes_scrape_config(self) -> Path:
        """The annotations overlay's Prometheus job (kubernetes_sd), which ``demo --pods`` runs natively."""
        return self.root / "deploy" / "kubernetes" / "overlays" / "annotations" / "prometheus.yml"

    @property
    def alertmanager_yml(self) -> Path:
        return self.root / "alertmanager" / "alertmanager.yml"

    @property
    def app_dir(self) -> Path:
        return self.root / "examples" / "flask_app"

    @property
    def uwsgi_ini(self) -> Path:
        return self.app_dir / "uwsgi.ini"


def _is_checkout(path: Path) -> bool:
    return all((path / rel).is_file() for rel in REQUIRED)


def find_stack_files(root: str | os.PathLike | None = None) -> StackFiles:
    """The checkout holding the stack files: ``root`` if given, else next to this package, else cwd upwards.

    >>> find_stack_files("/nonexistent")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    statsd_instrument.stack.files.RepoFilesNotFoundError: /nonexistent is not a statsd_instrument checkout ...
    """
    if root is not None:
        path = Path(root).resolve()
        if not _is_checkout(path):
            missing = [rel for rel in REQUIRED if not (path / rel).is_file()]
            raise RepoFilesNotFoundError(
                f"{root} is not a statsd_instrument checkout (missing {', '.join(missing)})"
            )
        return StackFiles(path)
    here = Path(__file__).resolve().parents[2]
    packaged = PACKAGED_STACK
    cwd = Path.cwd().resolve()
    for candidate in (here, packaged, cwd, *cwd.parents):
        if _is_checkout(candidate):
            return StackFiles(candidate)
    places = f"{here}" if here == cwd else f"{here} (next to the package), {cwd}"
    raise RepoFilesNotFoundError(
        f"no statsd_instrument checkout found in {places} or its parents (it needs {', '.join(REQUIRED)}); "
        "install a wheel (pip install 'statsd_instrument[demo]'), cd into a checkout, or pass --repo DIR"
    )
