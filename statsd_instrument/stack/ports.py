"""Check that the ports a stack needs are free before starting anything, and name the flag to change one.

>>> check_ports_free([Port("app", 0, "tcp", "--app-port")])
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Port:
    """A port one component listens on; ``flag`` is the command-line option that changes it."""

    component: str
    number: int
    protocol: str  # "tcp" or "udp"
    flag: str


class PortTakenError(RuntimeError):
    """A port is already in use; ``str()`` is a one-line message naming the port and the flag.

    >>> print(PortTakenError(Port("Prometheus", 9090, "tcp", "--prometheus-port")))
    port 9090/tcp (Prometheus) is already in use on 127.0.0.1; pick another with --prometheus-port
    """

    def __init__(self, port: Port) -> None:
        self.port = port
        super().__init__(
            f"port {port.number}/{port.protocol} ({port.component}) is already in use on 127.0.0.1; "
            f"pick another with {port.flag}"
        )


def port_is_free(number: int, protocol: str = "tcp", host: str = "127.0.0.1") -> bool:
    """Whether ``host:number`` can be bound now (TCP or UDP).

    >>> with socket.socket() as s:
    ...     s.bind(("127.0.0.1", 0))
    ...     s.listen()
    ...     port_is_free(s.getsockname()[1])
    False
    """
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        if kind == socket.SOCK_STREAM:
            # the same option servers set, so a port in TIME_WAIT after a clean stop counts as free
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, number))
        except OSError as err:
            if err.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def check_ports_free(ports: Iterable[Port]) -> None:
    """Raise :class:`PortTakenError` for the first port that is in use, or for one listed twice."""
    seen: dict[tuple[int, str], Port] = {}
    for port in ports:
        if port.number and (port.number, port.protocol) in seen:
            other = seen[(port.number, port.protocol)]
            raise ValueError(
                f"{port.flag} and {other.flag} both ask for port {port.number}/{port.protocol}; "
                "give each component its own port"
            )
        seen[(port.number, port.protocol)] = port
        if not port_is_free(port.number, port.protocol):
            raise PortTakenError(port)
