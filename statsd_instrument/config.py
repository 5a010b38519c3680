"""Client settings: built from arguments, then the environment, then defaults, and validated.

Every bad value raises :class:`ConfigError` (a ``ValueError``) with a one-line message naming the argument or
environment variable and the value, so a misconfigured deployment fails at start-up, not silently.

Precedence for where to send: explicit arguments, then ``STATSD_SOCKET`` / ``STATSD_HOST`` / ``STATSD_PORT``,
then datadog's ``DD_DOGSTATSD_URL``, then ``DD_AGENT_HOST`` / ``DD_DOGSTATSD_PORT``, then 127.0.0.1:9125 (the
statsd_exporter default). As in datadog, ``DD_DOGSTATSD_URL`` counts only when no host, port or socket path
was given at all (explicit or ``STATSD_*``): it never mixes field by field with them. ``DD_DOGSTATSD_DISABLE``
(``1``/``true``/``True``/``yes``, datadog's values) makes a client send nothing (:attr:`Settings.disabled`).

>>> s = load_settings(env={"STATSD_TAGS": "env:prod,region:eu"}, prefix="shop")
>>> (s.protocol, s.host, s.port, s.prefix, s.constant_tags)
('udp', '127.0.0.1', 9125, 'shop', ('env:prod', 'region:eu'))
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
from typing import Any, Callable, Mapping, Sequence, TypeVar, Union

from statsd_instrument import validation

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9125
#: datadog's default port (the agent's), also the default of the datadog and statsd drop-ins
DATADOG_PORT = 8125
#: largest payload per datagram: fits one Ethernet frame for UDP; 8 KiB for unixgram and TCP writes
DEFAULT_MAX_BYTES = {"udp": 1432, "unixgram": 8192, "tcp": 8192, "null": 8192}
PROTOCOLS = ("udp", "tcp", "unixgram", "null")
#: the flush window: how long a metric call may wait in the process's buffer (``STATSD_FLUSH_INTERVAL_MS``)
DEFAULT_FLUSH_INTERVAL_MS = 50
FLUSH_INTERVAL_MS_RANGE = (10, 60_000)

T = TypeVar("T")

log = logging.getLogger("statsd_instrument")
#: DD_DOGSTATSD_DISABLE values that switch datadog's client off (any other value leaves it on)
DD_DISABLE_VALUES = ("True", "true", "yes", "1")
#: datadog's unified service tagging: these variables become constant tags of a datadog drop-in client
DD_TAG_VARIABLES = (("DD_ENV", "env"), ("DD_SERVICE", "service"), ("DD_VERSION", "version"))

TagsArg = Union[Sequence[str], Mapping[str, object], str, None]


class ConfigError(ValueError):
    """A setting has a bad value; the message names the setting and the value.

    >>> load_settings(env={"STATSD_PORT": "nine"})
    Traceback (most recent call last):
    ...
    statsd_instrument.config.ConfigError: STATSD_PORT='nine': expected an integer port 1-65535
    """


@dataclasses.dataclass(frozen=True)
class Settings:
    """Validated client settings (see :func:`load_settings`).

    >>> Settings().max_datagram_bytes
    1432
    """

    protocol: str = "udp"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    socket_path: str | None = None
    prefix: str = ""
    constant_tags: tuple = ()
    max_datagram_bytes: int = DEFAULT_MAX_BYTES["udp"]
    flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_MS / 1000
    strict: bool = False
    telemetry_interval_s: float = 10.0  # how often a process pushes what it dropped; 0: never
    #: why nothing is sent ("" when sending): ``DD_DOGSTATSD_DISABLE`` or a configuration error
    disabled: str = ""
    #: socket timeout in seconds of the TCP connect/write (None: the sink's default)
    timeout_s: float | None = None
    multi_value: bool = True

    def address(self) -> str:
        """Where lines go, for messages.

        >>> Settings(port=8125).address()
        'udp://127.0.0.1:8125'
        """
        if self.protocol == "unixgram":
            return f"unix://{self.socket_path}"
        return f"{self.protocol}://{self.host}:{self.port}"


def _checked(check: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``check(*args)`` of :mod:`statsd_instrument.validation`, its ``ValueError`` as a ConfigError."""
    try:
        return check(*args, **kwargs)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _port(source: str, value: object) -> int:
    return _checked(validation.check_port, value, source)


def _parse_dd_url(value: str) -> tuple[str, str | None, int | None, str | None]:
    """(protocol, host, port, socket_path) of a DD_DOGSTATSD_URL value (datadog's schemes).

    ``unix://`` and ``unixgram://`` send datagrams to the path; ``unixstream://`` too, with a one-line
    warning: statsd_exporter listens for unix datagrams only. ``udp://host`` without a port uses 8125, as
    datadog does.

    >>> _parse_dd_url("unixgram:///run/statsd.sock"), _parse_dd_url("udp://agent")
    (('unixgram', None, None, '/run/statsd.sock'), ('udp', 'agent', 8125, None))
    """
    scheme, sep, rest = value.partition("://")
    if sep and scheme in ("unix", "unixgram", "unixstream"):
        if not rest.startswith("/"):
            raise ConfigError(f"DD_DOGSTATSD_URL={value!r}: expected {scheme}:///absolute/path")
        if scheme == "unixstream":
            _note_once(
                f"DD_DOGSTATSD_URL={value!r}: statsd_exporter has no unix stream listener; sending datagrams "
                f"to {rest} (run it with --statsd.listen-unixgram={rest})"
            )
        return "unixgram", None, None, rest
    if sep and scheme == "udp":
        address = rest.rstrip("/")
        host, colon, port = address.rpartition(":")
        if not colon or "]" in port:  # no port (or a bare IPv6 address): datadog's default
            address = f"{address}:{DATADOG_PORT}"
        if not address.rpartition(":")[0].strip("[] "):
            raise ConfigError(f"DD_DOGSTATSD_URL={value!r}: expected udp://host:port")
        host, number = _checked(validation.parse_host_port, address, "DD_DOGSTATSD_URL")
        return "udp", host, number, None
    raise ConfigError(
        f"DD_DOGSTATSD_URL={value!r}: expected udp://host:port, unix:///path or unixgram:///path"
    )


_noted: set = set()


def _note_once(message: str) -> None:
    """Log a configuration warning once per process (a start-up message, not one per client)."""
    if message not in _noted:
        _noted.add(message)
        log.warning("statsd_instrument: %s", message)


def datadog_env_tags(env: Mapping[str, str] | None = None) -> list:
    """The constant tags datadog's client takes from the environment: ``DATADOG_TAGS`` (comma-separated;
    ``DD_TAGS``, comma- or space-separated, when ``DATADOG_TAGS`` is unset), then ``env``/``service``/
    ``version`` from ``DD_ENV``/``DD_SERVICE``/``DD_VERSION``.

    >>> datadog_env_tags({"DD_TAGS": "team:web region:eu", "DD_ENV": "prod", "DD_VERSION": "1.2"})
    ['team:web', 'region:eu', 'env:prod', 'version:1.2']
    """
    env = os.environ if env is None else env
    if "DATADOG_TAGS" in env:
        tags = [tag for tag in env["DATADOG_TAGS"].split(",") if tag]
    else:
        tags = [tag for tag in env.get("DD_TAGS", "").replace(",", " ").split() if tag]
    return tags + [f"{tag}:{env[var]}" for var, tag in DD_TAG_VARIABLES if env.get(var)]


def _bool(source: str, value: object) -> bool:
    return _checked(validation.parse_bool, value, source)


def _default_strict() -> bool:
    """Strict (raise on programming errors) under pytest or ``python -X dev``; lenient otherwise."""
    return "pytest" in sys.modules or bool(sys.flags.dev_mode)


def _constant_tags(source: str, tags: TagsArg) -> tuple:
    if tags is None:
        return ()
    return tuple(_checked(validation.tag_list, tags, source))


def load_settings(
    host: str | None = None,
    port: int | None = None,
    socket_path: str | None = None,
    prefix: str | None = None,
    constant_tags: TagsArg = None,
    *,
    protocol: str | None = None,
    max_datagram_bytes: int | None = None,
    flush_interval_s: float | None = None,
    strict: bool | None = None,
    multi_value: bool | None = None,
    telemetry_interval_s: float | None = None,
    timeout_s: float | None = None,
    default_port: int = DEFAULT_PORT,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from arguments, falling back on ``env`` (default ``os.environ``) and defaults.

    >>> load_settings(env={"DD_DOGSTATSD_URL": "unix:///run/statsd.sock"}).address()
    'unix:///run/statsd.sock'
    >>> load_settings(env={"DD_AGENT_HOST": "agent", "DD_DOGSTATSD_PORT": "8125"}).address()
    'udp://agent:8125'
    """
    env = os.environ if env is None else env
    dd_host = dd_path = None
    dd_port = None
    given = (
        host,
        port,
        socket_path,
        env.get("STATSD_SOCKET"),
        env.get("STATSD_HOST"),
        env.get("STATSD_PORT"),
    )
    if env.get("DD_DOGSTATSD_URL") and all(value is None or value == "" for value in given):
        _, dd_host, dd_port, dd_path = _parse_dd_url(env["DD_DOGSTATSD_URL"].strip())
    if socket_path is None and host is None:
        socket_path = env.get("STATSD_SOCKET") or dd_path
    if protocol is None:
        protocol = (env.get("STATSD_PROTOCOL") or "").strip().lower() or None
        source = "STATSD_PROTOCOL"
    else:
        source = "protocol"
    if protocol is None:
        protocol = "unixgram" if socket_path else "udp"
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{source}={protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    if protocol == "unixgram" and not socket_path:
        raise ConfigError(f"{source}={protocol!r}: unixgram needs socket_path or STATSD_SOCKET")
    if socket_path and protocol != "unixgram":
        raise ConfigError(
            f"socket_path={socket_path!r}: only valid with protocol 'unixgram', not {protocol!r}"
        )

    if host is None:
        host = env.get("STATSD_HOST") or dd_host or env.get("DD_AGENT_HOST") or DEFAULT_HOST
    host = _checked(validation.check_host, host, "host")
    if port is not None:
        port = _port("port", port)
    elif env.get("STATSD_PORT"):
        port = _port("STATSD_PORT", env["STATSD_PORT"])
    elif dd_port is not None:
        port = dd_port
    elif env.get("DD_DOGSTATSD_PORT"):
        port = _port("DD_DOGSTATSD_PORT", env["DD_DOGSTATSD_PORT"])
    else:
        port = default_port

    if prefix is None:
        prefix, source = env.get("STATSD_PREFIX", ""), "STATSD_PREFIX"
    else:
        source = "prefix"
    prefix = prefix.strip()
    if prefix:
        try:
            validation.check_name(prefix)
        except ValueError as err:
            raise ConfigError(f"{source}={prefix!r}: {err}") from None

    if constant_tags is None:
        tags = _constant_tags("STATSD_TAGS", env.get("STATSD_TAGS"))
    else:
        tags = _constant_tags("constant_tags", constant_tags)

    if max_datagram_bytes is None:
        max_datagram_bytes = DEFAULT_MAX_BYTES[protocol]
    check_max_datagram_bytes(max_datagram_bytes, protocol, "max_datagram_bytes")
    if timeout_s is not None and (
        not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool) or not 0 < timeout_s <= 60
    ):
        raise ConfigError(f"timeout={timeout_s!r}: expected seconds, more than 0 and at most 60")
    low_ms, high_ms = FLUSH_INTERVAL_MS_RANGE
    if flush_interval_s is None:
        raw = env.get("STATSD_FLUSH_INTERVAL_MS", "")
        if not raw.strip():
            flush_interval_s = DEFAULT_FLUSH_INTERVAL_MS / 1000
        else:
            try:
                ms = int(raw.strip())
            except ValueError:
                ms = -1
            if not low_ms <= ms <= high_ms:
                raise ConfigError(
                    f"STATSD_FLUSH_INTERVAL_MS={raw!r}: expected whole milliseconds "
                    f"between {low_ms} and {high_ms}"
                )
            flush_interval_s = ms / 1000
    flush_interval_s = _checked(
        validation.check_seconds, flush_interval_s, "flush_interval_s", low_ms / 1000, high_ms / 1000
    )
    if multi_value is None:
        env_multi_value = env.get("STATSD_MULTI_VALUE")
        multi_value = True if env_multi_value is None else _bool("STATSD_MULTI_VALUE", env_multi_value)
    else:
        multi_value = _bool("multi_value", multi_value)

    if strict is None:
        env_strict = env.get("STATSD_STRICT")
        strict = _default_strict() if env_strict is None else _bool("STATSD_STRICT", env_strict)
    else:
        strict = _bool("strict", strict)
    source = "telemetry_interval_s"
    value: object = telemetry_interval_s
    if value is None:
        source, raw = "STATSD_TELEMETRY_INTERVAL", env.get("STATSD_TELEMETRY_INTERVAL", "10")
        value = raw
        with contextlib.suppress(ValueError):
            value = float(raw)
    if type(value) in (int, float) and value == 0:  # 0: no telemetry
        telemetry_interval_s = 0.0
    else:
        telemetry_interval_s = _checked(validation.check_seconds, value, source, 0.01, 3600)
    disabled = env.get("DD_DOGSTATSD_DISABLE", "")
    return Settings(
        protocol=protocol,
        host=host,
        port=port,
        socket_path=socket_path,
        prefix=prefix,
        constant_tags=tags,
        max_datagram_bytes=max_datagram_bytes,
        flush_interval_s=float(flush_interval_s),
        strict=strict,
        multi_value=multi_value,
        telemetry_interval_s=float(telemetry_interval_s),
        disabled=f"DD_DOGSTATSD_DISABLE={disabled!r}" if disabled in DD_DISABLE_VALUES else "",
        timeout_s=None if timeout_s is None else float(timeout_s),
    )


def check_max_datagram_bytes(value: object, protocol: str, source: str) -> int:
    """``value`` if one datagram of ``protocol`` can carry that many bytes (64 at least: one line), else a
    :class:`ConfigError` naming ``source``.

    >>> check_max_datagram_bytes(40, "udp", "maxudpsize")
    Traceback (most recent call last):
    ...
    statsd_instrument.config.ConfigError: maxudpsize=40: expected an integer 64-65507 (bytes per datagram)
    """
    limit = 65507 if protocol == "udp" else 1 << 20
    if type(value) is not int or not 64 <= value <= limit:
        raise ConfigError(f"{source}={value!r}: expected an integer 64-{limit} (bytes per datagram)")
    return value


def strict_default(strict: object = None, env: Mapping[str, str] | None = None) -> bool:
    """Whether a client made with ``strict`` raises, without ever raising itself (for reporting a
    configuration error: a bad ``STATSD_STRICT`` counts as unset).

    >>> strict_default(False), strict_default(None, {"STATSD_STRICT": "1"})
    (False, True)
    """
    if isinstance(strict, bool):
        return strict
    raw = (os.environ if env is None else env).get("STATSD_STRICT")
    try:
        return _default_strict() if raw is None else _bool("STATSD_STRICT", raw)
    except ConfigError:
        return _default_strict()
