"""Settings come from arguments, STATSD_* then DD_* variables, then defaults; bad values fail in one line."""

from __future__ import annotations

import pytest

from statsd_instrument import Client, ConfigError, configure, statsd
from statsd_instrument.config import load_settings


def test_defaults_point_at_the_exporters_default_port():
    s = load_settings(env={})
    assert (s.protocol, s.host, s.port, s.max_datagram_bytes) == ("udp", "127.0.0.1", 9125, 1432)


def test_statsd_variables_win_over_datadog_ones():
    env = {
        "STATSD_HOST": "exporter",
        "STATSD_PORT": "9200",
        "DD_AGENT_HOST": "agent",
        "DD_DOGSTATSD_PORT": "8125",
        "DD_DOGSTATSD_URL": "udp://other:1",
    }
    assert load_settings(env=env).address() == "udp://exporter:9200"


def test_datadog_variables_are_fallbacks():
    assert load_settings(env={"DD_AGENT_HOST": "agent"}).address() == "udp://agent:9125"
    assert load_settings(env={"DD_DOGSTATSD_URL": "udp://h:8125"}).address() == "udp://h:8125"
    s = load_settings(env={"DD_DOGSTATSD_URL": "unix:///var/run/dsd.socket"})
    assert (s.protocol, s.socket_path, s.max_datagram_bytes) == ("unixgram", "/var/run/dsd.socket", 8192)


def test_statsd_socket_implies_unixgram_and_arguments_win():
    assert load_settings(env={"STATSD_SOCKET": "/tmp/s.sock"}).protocol == "unixgram"
    assert load_settings(host="h", port=1, env={"STATSD_SOCKET": "/tmp/s.sock"}).address() == "udp://h:1"


def test_prefix_tags_and_strict_from_the_environment():
    s = load_settings(
        env={"STATSD_PREFIX": "shop", "STATSD_TAGS": "env:prod, region: eu", "STATSD_STRICT": "0"}
    )
    assert (s.prefix, s.constant_tags, s.strict) == ("shop", ("env:prod", "region:eu"), False)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"STATSD_PORT": "abc"}, "STATSD_PORT='abc'"),
        ({"STATSD_PORT": "70000"}, "STATSD_PORT='70000'"),
        ({"DD_DOGSTATSD_PORT": "x"}, "DD_DOGSTATSD_PORT='x'"),
        ({"DD_DOGSTATSD_URL": "tcp://h:1"}, "DD_DOGSTATSD_URL='tcp://h:1'"),
        ({"DD_DOGSTATSD_URL": "unix://relative"}, "DD_DOGSTATSD_URL='unix://relative'"),
        ({"STATSD_TAGS": "env"}, "STATSD_TAGS='env'"),
        ({"STATSD_TAGS": "le:1"}, "STATSD_TAGS='le:1'"),
        ({"STATSD_PREFIX": "my app"}, "STATSD_PREFIX='my app'"),
        ({"STATSD_STRICT": "maybe"}, "STATSD_STRICT='maybe'"),
        ({"STATSD_PROTOCOL": "http"}, "STATSD_PROTOCOL='http'"),
    ],
)
def test_a_bad_value_fails_with_one_line_naming_variable_and_value(env, named):
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    message = str(info.value)
    assert message.startswith(named) and "\n" not in message


def test_a_deferred_client_reads_the_environment_at_first_use_and_fails_there(monkeypatch):
    client = Client.deferred()  # how the module-level statsd is made: nothing is read at import
    monkeypatch.setenv("STATSD_PORT", "nope")
    with pytest.raises(ConfigError, match="STATSD_PORT='nope'"):
        client.increment("x")
    with pytest.raises(ConfigError, match="STATSD_PORT='nope'"):
        configure()  # reconfiguring the module client from the environment fails the same way


def test_configure_changes_the_module_client_in_place():
    before = statsd
    try:
        assert configure(protocol="null", prefix="billing") is before
        assert statsd.settings.prefix == "billing"
    finally:
        configure()
    assert statsd.settings.prefix == ""


def test_explicit_client_arguments_are_validated_at_construction():
    with pytest.raises(ConfigError, match="max_datagram_bytes=10"):
        Client(max_datagram_bytes=10)
    with pytest.raises(ConfigError, match="flush_interval_s=0"):
        Client(flush_interval_s=0)


def test_dogstatsd_url_counts_only_without_any_explicit_address_as_in_datadog():
    env = {"DD_DOGSTATSD_URL": "udp://url-host:7000", "DD_AGENT_HOST": "agent", "DD_DOGSTATSD_PORT": "7001"}
    assert load_settings(env=env).address() == "udp://url-host:7000"
    # an explicit field turns the URL off: the other field comes from DD_AGENT_HOST / DD_DOGSTATSD_PORT
    assert load_settings(port=7002, env=env).address() == "udp://agent:7002"
    assert load_settings(host="explicit", env=env).address() == "udp://explicit:7001"
    assert load_settings(env={**env, "DD_DOGSTATSD_URL": "tcp://ignored"}, host="h", port=1).port == 1


@pytest.mark.parametrize("scheme", ["unix", "unixgram", "unixstream"])
def test_dogstatsd_url_unix_schemes_send_datagrams_to_the_path(scheme):
    settings = load_settings(env={"DD_DOGSTATSD_URL": f"{scheme}:///run/dsd-{scheme}.sock"})
    assert (settings.protocol, settings.socket_path) == ("unixgram", f"/run/dsd-{scheme}.sock")


@pytest.mark.parametrize(("value", "disabled"), [("1", True), ("true", True), ("True", True), ("yes", True),
                                                  ("0", False), ("no", False), ("", False)])  # fmt: skip
def test_dd_dogstatsd_disable_takes_datadogs_values(value, disabled):
    assert bool(load_settings(env={"DD_DOGSTATSD_DISABLE": value}).disabled) is disabled


def test_in_production_a_bad_value_is_logged_once_and_the_client_sends_nothing(caplog):
    with caplog.at_level("ERROR", logger="statsd_instrument"):
        clients = [Client(host="127.0.0.1", port="x-production", strict=False) for _ in range(2)]
    for client in clients:
        client.increment("a")
        client.flush()
        assert client.stats["dropped_lines"] == 1 and client.stats["sent_lines"] == 0
        client.close()
    assert [r.getMessage() for r in caplog.records] == [
        "statsd_instrument: port='x-production': expected an integer port 1-65535; sending no metrics "
        "(counted as dropped)"
    ]
