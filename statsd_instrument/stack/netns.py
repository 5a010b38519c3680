"""Network namespaces as pods: a bridge plays the node's network, each pod a namespace with its own address.

Every name this creates starts with one prefix, ``si-<pid>-`` (the demo's pid), so that clean-up, and any
check that nothing is left, finds exactly what one run made: namespaces ``si-<pid>-<pod>``, the bridge
``si-<pid>-br`` and the host ends of the veth pairs ``si-<pid>-h<n>`` (a pod's end is deleted with its
namespace). Needs root and iproute2 (``ip``). The subnet is a /24 under 10.213.0.0/16 that no route of this
machine covers; nothing leaves it (no forwarding, no NAT): the demo's traffic and scrapes go from the host to
the pods over the bridge only.

>>> names_with_prefix(["si-42-br", "si-4-br", "eth0", "si-42-h1"], "si-42-")
['si-42-br', 'si-42-h1']
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Iterable


class NetnsError(RuntimeError):
    """A namespace, link or address could not be set up; the message holds the command and its error."""


def names_with_prefix(names: Iterable[str], prefix: str) -> list[str]:
    return sorted(name for name in names if name.startswith(prefix))


def why_not_available() -> str | None:
    """None if this process can make network namespaces, else a one-line reason with what to do."""
    if shutil.which("ip") is None:
        return "--pods needs iproute2's `ip` (Debian: apt-get install iproute2)"
    if os.geteuid() != 0:
        return (
            "--pods needs root: each pod is a network namespace with its own address (ip netns, veth, a "
            "bridge); run it as root, or run the one-pod demo without --pods"
        )
    return None


def _ip(*args: str, check: bool = True) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result.stdout


def namespaces() -> list[str]:
    """Names of the network namespaces that exist now."""
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


def links() -> list[str]:
    """Names of the network interfaces of the host namespace."""
    return [link["ifname"] for link in json.loads(_ip("-j", "link", "show") or "[]")]


def free_subnet(seed: int) -> ipaddress.IPv4Network:
    """A /24 under 10.213.0.0/16 that overlaps no route of the host (tried from ``seed`` on)."""
    routes = []
    for route in json.loads(_ip("-j", "-4", "route", "show", "table", "all") or "[]"):
        dst = route.get("dst", "default")
        if dst != "default":
            try:
                routes.append(ipaddress.ip_network(dst, strict=False))
            except ValueError:
                continue
    for i in range(256):
        candidate = ipaddress.IPv4Network(f"10.213.{(seed + i) % 256}.0/24")
        if not any(candidate.overlaps(route) for route in routes):
            return candidate
    raise NetnsError("no free /24 under 10.213.0.0/16 for the pods' network")


@dataclass(frozen=True)
class PodAddress:
    """Where one pod lives: its namespace, its address on the bridge, the host end of its veth."""

    name: str
    namespace: str
    ip: str
    host_link: str

    def exec_argv(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the pod's namespace (``ip netns exec`` execs it: the pid stays the same)."""
        return ["ip", "netns", "exec", self.namespace, *argv]


class PodNetwork:
    """The bridge and the pods' namespaces of one run; ``remove()`` deletes all of it, whatever failed."""

    def __init__(self, prefix: str, subnet: ipaddress.IPv4Network) -> None:
        self.prefix = prefix
        self.subnet = subnet
        self.bridge = f"{prefix}br"
        self.gateway = str(subnet.network_address + 1)
        self._next_host = 11
        self.pods: dict[str, PodAddress] = {}

    def create(self) -> PodNetwork:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        return self

    def add_pod(self, name: str) -> PodAddress:
        """A new namespace for pod ``name``, wired to the bridge with the next free address."""
        index = self._next_host
        self._next_host += 1
        ip = str(self.subnet.network_address + index)
        pod = PodAddress(name, f"{self.prefix}{name}", ip, f"{self.prefix}h{index}")
        peer = f"{self.prefix}p{index}"
        self.pods[name] = pod
        _ip("netns", "add", pod.namespace)
        _ip("link", "add", pod.host_link, "type", "veth", "peer", "name", peer)
        _ip("link", "set", pod.host_link, "master", self.bridge, "up")
        _ip("link", "set", peer, "netns", pod.namespace)
        _ip("-n", pod.namespace, "addr", "add", f"{ip}/{self.subnet.prefixlen}", "dev", peer)
        _ip("-n", pod.namespace, "link", "set", peer, "up")
        _ip("-n", pod.namespace, "link", "set", "lo", "up")
        return pod

    def remove_pod(self, name: str) -> None:
        """Delete a pod's namespace (its veth pair goes with it). Stop its processes first."""
        pod = self.pods.pop(name)
        _ip("netns", "del", pod.namespace, check=False)
        _ip("link", "del", pod.host_link, check=False)

    def remove(self) -> list[str]:
        """Delete every namespace and link with this run's prefix; returns the names still left (none)."""
        for name in list(self.pods):
            self.remove_pod(name)
        for namespace in names_with_prefix(namespaces(), self.prefix):
            _ip("netns", "del", namespace, check=False)
        for link in names_with_prefix(links(), self.prefix):
            _ip("link", "del", link, check=False)
        return self.leftovers()

    def leftovers(self) -> list[str]:
        return names_with_prefix(namespaces(), self.prefix) + names_with_prefix(links(), self.prefix)
