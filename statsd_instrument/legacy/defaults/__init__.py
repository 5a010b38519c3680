"""Default settings of the legacy clients, the same values as the ``statsd`` package's ``statsd.defaults``.

>>> (HOST, PORT, PREFIX, MAXUDPSIZE, IPV6)
('localhost', 8125, None, 512, False)
"""

from __future__ import annotations

HOST = "localhost"
PORT = 8125
IPV6 = False
PREFIX = None
MAXUDPSIZE = 512
