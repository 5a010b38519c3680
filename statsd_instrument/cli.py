"""The ``statsd-instrument`` command: one entry point, one module per subcommand.

Each subcommand lives in its own module with a ``main(argv: list[str]) -> int`` function; this file only
dispatches, so the modules stay independent and import only what they use.

>>> main(["--help"])  # doctest: +ELLIPSIS
usage: statsd-instrument COMMAND [ARGS...]
...
0
"""

from __future__ import annotations

import importlib
import sys

#: subcommand -> (module, one-line help)
COMMANDS = {
    "exporter": ("statsd_instrument.exporter.cli", "run the statsd_exporter-compatible exporter"),
    "check-mapping": ("statsd_instrument.mapping.check", "lint a statsd_exporter mapping file"),
    "explain": ("statsd_instrument.mapping.explain", "show what a mapping does to statsd lines"),
    "demo": ("statsd_instrument.demo", "run exporter + example app (uwsgi, 5 workers) + Prometheus natively"),
    "suggest-mapping": (
        "statsd_instrument.legacy.suggest",
        "propose mapping rules from legacy statsd traffic",
    ),
}


#: third-party module -> the extra that installs it (the client itself needs none)
EXTRAS = {"yaml": "exporter", "prometheus_client": "demo", "flask": "demo"}


def _usage() -> str:
    lines = ["usage: statsd-instrument COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<16} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines.append("\nRun 'statsd-instrument COMMAND --help' for a command's options.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``statsd-instrument COMMAND ...`` to the command's module; returns the exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"statsd-instrument: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
    except ModuleNotFoundError as exc:
        if exc.name not in EXTRAS:
            raise
        extra = "demo" if name == "demo" else EXTRAS[exc.name]
        print(
            f"statsd-instrument {name}: needs the Python package {exc.name!r}, which the client alone "
            f"does not install: pip install 'statsd_instrument[{extra}]'",
            file=sys.stderr,
        )
        return 2
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
