"""A ready ``statsd`` client configured from Django settings, like ``statsd.defaults.django``.

``from statsd.defaults.django import statsd`` becomes ``from statsd_instrument.legacy.defaults.django import
statsd``. It reads the settings the original reads, with the original's defaults: ``STATSD_HOST``
(localhost), ``STATSD_PORT`` (8125), ``STATSD_PREFIX`` (none), ``STATSD_MAXUDPSIZE`` (512), ``STATSD_IPV6``
(False). A ``STATSD_MAXUDPSIZE`` no datagram can carry stops the import with a ``ValueError`` naming it.
``from ... import statsd`` needs configured Django settings (``DJANGO_SETTINGS_MODULE`` or
``settings.configure()``), as the original's import does; the client is made at that first import.
"""

from __future__ import annotations

from typing import Any

from statsd_instrument.legacy import defaults
from statsd_instrument.legacy.client import StatsClient


def client_from_settings(source: Any = None) -> StatsClient:
    """A :class:`StatsClient` from ``source`` (default: ``django.conf.settings``; any object with the same
    attributes), missing ones taking the ``statsd`` package's defaults.

    >>> from types import SimpleNamespace
    >>> client = client_from_settings(SimpleNamespace(STATSD_HOST="127.0.0.1", STATSD_PREFIX="shop"))
    >>> client._addr, client._prefix, client._maxudpsize
    (('127.0.0.1', 8125), 'shop', 512)
    >>> client.close()
    """
    if source is None:
        from django.conf import settings

        source = settings
    return StatsClient(
        host=getattr(source, "STATSD_HOST", defaults.HOST),
        port=getattr(source, "STATSD_PORT", defaults.PORT),
        prefix=getattr(source, "STATSD_PREFIX", defaults.PREFIX),
        maxudpsize=getattr(source, "STATSD_MAXUDPSIZE", defaults.MAXUDPSIZE),
        ipv6=getattr(source, "STATSD_IPV6", defaults.IPV6),
    )


def __getattr__(name: str) -> Any:
    # ``statsd`` is made on first access (``from ... import statsd``), not when the module is loaded, so
    # that loading it (docs, doctest collection) does not need configured settings
    if name == "statsd":
        client = globals()["statsd"] = client_from_settings()
        return client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
