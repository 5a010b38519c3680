"""A ready ``statsd`` client configured from the environment, like ``statsd.defaults.env``.

``from statsd.defaults.env import statsd`` becomes ``from statsd_instrument.legacy.defaults.env import
statsd``. Variables (defaults are the original's): ``STATSD_HOST`` (localhost), ``STATSD_PORT`` (8125),
``STATSD_PREFIX`` (none), ``STATSD_MAXUDPSIZE`` (512), ``STATSD_IPV6`` (0). A bad value stops the import
with one line naming the variable and the value. Point it at the exporter with ``STATSD_PORT=9125``.

>>> statsd._prepare("imports", "1|c", 1)
'imports:1|c'
>>> client_from_env({"STATSD_PORT": "http"})
Traceback (most recent call last):
ValueError: STATSD_PORT='http' is not a port number (1-65535)
"""

from __future__ import annotations

import os
from typing import Mapping

from statsd_instrument.legacy import defaults
from statsd_instrument.legacy.client import StatsClient


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int, what: str) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValueError(f"{name}={raw!r} is not {what}")
    return value


def client_from_env(env: Mapping[str, str] = os.environ) -> StatsClient:
    """A :class:`StatsClient` configured from ``env`` (``STATSD_*`` as the ``statsd`` package reads them).

    >>> client = client_from_env({"STATSD_HOST": "127.0.0.1", "STATSD_PREFIX": "shop"})
    >>> client._prefix, client._addr, client._maxudpsize
    ('shop', ('127.0.0.1', 8125), 512)
    >>> client.close()
    """
    port = _integer(env, "STATSD_PORT", defaults.PORT, 1, 65535, "a port number (1-65535)")
    maxudpsize = _integer(
        env, "STATSD_MAXUDPSIZE", defaults.MAXUDPSIZE, 64, 65507, "a datagram size (64-65507)"
    )
    ipv6 = _integer(env, "STATSD_IPV6", int(defaults.IPV6), 0, 1, "0 or 1")
    return StatsClient(
        host=env.get("STATSD_HOST", defaults.HOST),
        port=port,
        prefix=env.get("STATSD_PREFIX", defaults.PREFIX),
        maxudpsize=maxudpsize,
        ipv6=bool(ipv6),
    )


statsd = client_from_env()
