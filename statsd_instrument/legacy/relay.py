"""Old name of :mod:`statsd_instrument.legacy.udp_tee`, kept because the migration guide of earlier
releases runs ``python -m statsd_instrument.legacy.relay``; ``Relay`` is
:class:`~statsd_instrument.legacy.udp_tee.UdpTee`.

(The exporter's own ``--statsd.relay.address`` lives in :mod:`statsd_instrument.exporter.relay`.)
"""

from __future__ import annotations

import sys

from statsd_instrument.legacy.udp_tee import UdpTee as Relay
from statsd_instrument.legacy.udp_tee import main

__all__ = ["Relay", "main"]

if __name__ == "__main__":
    sys.exit(main())
