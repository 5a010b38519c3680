"""The statsd-instrument entry point dispatches to subcommands and rejects unknown ones."""

from __future__ import annotations

from statsd_instrument import cli


def test_unknown_command_exits_2_and_names_it(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "'frobnicate'" in capsys.readouterr().err


def test_no_command_prints_usage_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "usage: statsd-instrument COMMAND" in capsys.readouterr().out
