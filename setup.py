"""Build hook: the native demo's stack files travel in the wheel as package data, copied from the top level.

The top-level files (``exporter-mapping.yml``, ``prometheus.yml``, ``prometheus/rules``, the example
apps, ...) stay the one source; a wheel carries a copy under ``statsd_instrument/_stack/`` so that
``pip install 'statsd_instrument[demo]'`` followed by ``statsd-instrument demo`` works outside any checkout
(``statsd_instrument.stack.files`` looks there when no checkout is found). Everything else is in
pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

#: top-level paths (globs, relative to this file) copied into the wheel; MANIFEST.in puts them in the sdist
STACK_GLOBS = (
    "exporter-mapping.yml",
    "prometheus.yml",
    "prometheus/rules/*.yml",
    "alertmanager/*.yml",
    "examples/**/*.py",
    "examples/**/*.ini",
    "examples/**/*.txt",
)


class BuildPyWithStack(build_py):
    """``build_py`` that also copies :data:`STACK_GLOBS` to ``statsd_instrument/_stack`` in the build tree."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs from the checkout itself
        root = Path(__file__).resolve().parent
        target = Path(self.build_lib) / "statsd_instrument" / "_stack"
        for pattern in STACK_GLOBS:
            for src in sorted(root.glob(pattern)):
                if src.is_file() and "__pycache__" not in src.parts:
                    dst = target / src.relative_to(root)
                    self.mkpath(str(dst.parent))
                    self.copy_file(str(src), str(dst))


setup(cmdclass={"build_py": BuildPyWithStack})
