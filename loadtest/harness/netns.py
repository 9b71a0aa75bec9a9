"""A small internet inside this machine: Linux network namespaces joined by one bridge.

A hub namespace holds a bridge; each host is a namespace of its own with a veth pair
into that bridge and the address ``10.77.0.N/24`` on its ``eth0`` (and ``lo`` up). No
namespace has a default route, so nothing a host sends can leave the /24; the hosts
reach each other and nothing else (not even this machine's loopback). A program runs
on host N as ``ip netns exec NAME ARGV`` (:meth:`Network.argv`): ``ip`` execs it in
place, so the PID a runner gets is the program's own.

Every name starts with a per-run tag, ``atlasnet-PID-XXXX-``, so parallel runs never
collide; :meth:`Network.remove` deletes the links and namespaces by name (a ``with``
block or a test finalizer calls it, also on failure), and :func:`sweep_stale` deletes
the namespaces of runs whose process is gone, and only those with our prefix.

Root only: :func:`unavailable` says why not, in words, for a skip or an exit message.
Link shaping (:meth:`Network.shape`) needs the kernel's ``netem`` qdisc (delay, loss),
which some kernels lack; it returns the error instead of raising.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

PREFIX = "atlasnet-"
SUBNET = "10.77.0"
"""The hosts' /24: host N is ``10.77.0.N``."""
NETNS_DIR = Path("/run/netns")
IP_TIMEOUT = 10.0
_UDP_CLASS = re.compile(r"class htb 1:10 .*?\n\s*Sent (\d+) bytes (\d+) pkt")


class NetnsError(RuntimeError):
    """An ``ip`` or ``tc`` command failed; the message holds its stderr."""


def ip(*args: str, check: bool = True) -> str:
    """Run ``ip ARGS`` (or ``tc`` when the first argument is ``tc``); its stdout."""
    argv = list(args) if args[0] == "tc" else ["ip", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=IP_TIMEOUT, check=False)
    if check and done.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def unavailable() -> str | None:
    """Why namespaces cannot be built here (not root, no ``ip``, ``ip netns add`` refused),
    or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run as root to include them"
    if shutil.which("ip") is None:
        return "network namespaces need the ip command (Debian package iproute2)"
    probe = f"{PREFIX}{os.getpid()}-probe{secrets.token_hex(2)}"
    try:
        ip("netns", "add", probe)
    except (NetnsError, OSError) as exc:
        return f"ip netns add failed here: {exc}"
    ip("netns", "del", probe, check=False)
    return None


def sweep_stale() -> list[str]:
    """Delete namespaces left by runs of ours that died (``atlasnet-PID-...`` whose PID is
    gone); the names deleted."""
    gone = []
    for name in _our_namespaces():
        pid = name.removeprefix(PREFIX).split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            ip("netns", "del", name, check=False)
            gone.append(name)
    return gone


def _our_namespaces() -> list[str]:
    names = [n.name for n in NETNS_DIR.iterdir()] if NETNS_DIR.is_dir() else []
    return sorted(n for n in names if n.startswith(PREFIX))


@dataclass(frozen=True, slots=True)
class Host:
    index: int
    namespace: str

    @property
    def address(self) -> str:
        return f"{SUBNET}.{self.index}"


class Network:
    """The hub, its bridge and the hosts ``indices`` (1..253); ``with Network(...) as net``
    builds it and removes it after, or call :meth:`build` and :meth:`remove`."""

    def __init__(self, indices: Sequence[int]) -> None:
        if not all(1 <= i <= 253 for i in indices):
            raise ValueError("host indices are 1..253")
        self.tag = f"{PREFIX}{os.getpid()}-{secrets.token_hex(2)}-"
        self.hub = f"{self.tag}hub"
        self.hosts = {i: Host(i, f"{self.tag}h{i}") for i in dict.fromkeys(indices)}
        self._made: list[str] = []

    def __enter__(self) -> Self:
        self.build()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def build(self) -> None:
        """Create the hub with its bridge, then every host; removed again if any step fails."""
        try:
            self._namespace(self.hub)
            ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            ip("-n", self.hub, "link", "set", "br0", "up")
            for host in self.hosts.values():
                self.add(host.index)
        except BaseException:
            self.remove()
            raise

    def add(self, index: int) -> Host:
        """Host ``index`` joined to the bridge (built already, or a new one)."""
        host = self.hosts.setdefault(index, Host(index, f"{self.tag}h{index}"))
        self._namespace(host.namespace)
        port = f"v{index}"
        ip("-n", self.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0",
           "netns", host.namespace)  # fmt: skip
        ip("-n", self.hub, "link", "set", port, "master", "br0", "up")
        ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip("-n", host.namespace, "link", "set", "eth0", "up")
        ip("-n", host.namespace, "link", "set", "lo", "up")
        return host

    def _namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self._made.append(name)

    def argv(self, index: int, argv: Sequence[str]) -> list[str]:
        """``argv`` run on host ``index``."""
        return ["ip", "netns", "exec", self.hosts[index].namespace, *argv]

    def address(self, index: int) -> str:
        return self.hosts[index].address

    def unplug(self, index: int) -> None:
        """Take host ``index``'s link down: it drops off the network as a dead machine does
        (packets to it vanish; no refusals come back)."""
        ip("-n", self.hub, "link", "set", f"v{index}", "down")

    def shape(self, index: int, delay_ms: float = 0, loss_percent: float = 0) -> str | None:
        """Delay and loss on host ``index``'s link (netem, both ways: its eth0 and its bridge
        port); the error when the kernel has no netem, else None."""
        spec = ["delay", f"{delay_ms / 2:g}ms", "loss", f"{loss_percent / 2:g}%"]
        try:
            for ns, dev in ((self.hosts[index].namespace, "eth0"), (self.hub, f"v{index}")):
                ip("tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "netem", *spec)
        except NetnsError as exc:
            return str(exc)
        return None

    def count_udp(self, index: int) -> str | None:
        """Count host ``index``'s UDP bytes apart from the rest of its traffic: an htb qdisc
        on both ends of its link with a class for UDP (u32 classifier) and one for the rest,
        neither with a limit that matters (10 Gbit/s). The error if the kernel lacks them."""
        ends = ((self.hosts[index].namespace, "eth0"), (self.hub, f"v{index}"))
        try:
            for ns, dev in ends:
                tc = ("tc", "-n", ns)
                ip(*tc, "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb",
                   "default", "20")  # fmt: skip
                for leaf in ("1:10", "1:20"):
                    ip(*tc, "class", "add", "dev", dev, "parent", "1:", "classid", leaf, "htb",
                       "rate", "10gbit", "quantum", "60000")  # fmt: skip
                udp = ("u32", "match", "ip", "protocol", "17", "0xff", "flowid", "1:10")
                ip(*tc, "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio",
                   "1", *udp)  # fmt: skip
        except NetnsError as exc:
            return str(exc)
        return None

    def udp_traffic(self, index: int) -> tuple[int, int]:
        """Host ``index``'s UDP bytes (received, sent) since :meth:`count_udp`, as frames on
        its link (Ethernet, IP and UDP headers included)."""
        got = []
        for ns, dev in ((self.hub, f"v{index}"), (self.hosts[index].namespace, "eth0")):
            found = _UDP_CLASS.search(ip("tc", "-n", ns, "-s", "class", "show", "dev", dev))
            got.append(int(found[1]) if found else 0)
        return got[0], got[1]

    def traffic(self) -> dict[int, tuple[int, int]]:
        """Bytes (received, sent) by each host's eth0 since it was made, read from the hub's
        side of each veth (what one side sends the other receives)."""
        links = json.loads(ip("-n", self.hub, "-s", "-j", "link", "show") or "[]")
        stats = {link["ifname"]: link["stats64"] for link in links}
        out = {}
        for index in self.hosts:
            seen = stats.get(f"v{index}")
            if seen is not None:
                out[index] = (int(seen["tx"]["bytes"]), int(seen["rx"]["bytes"]))
        return out

    def snmp(self, index: int) -> dict[str, int]:
        """Host ``index``'s protocol counters (``/proc/net/snmp`` in its namespace), as
        ``{"Udp.OutDatagrams": n, "Tcp.InSegs": n, ...}``."""
        argv = self.argv(index, ["cat", "/proc/net/snmp"])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=IP_TIMEOUT,
                              check=True)  # fmt: skip
        lines = [line.split() for line in done.stdout.splitlines()]
        counters = {}
        for names, values in zip(lines[::2], lines[1::2], strict=False):
            proto = names[0].rstrip(":")
            counters.update({f"{proto}.{n}": int(v) for n, v in zip(names[1:], values[1:],
                                                                     strict=False)})  # fmt: skip
        return counters

    def remove(self) -> None:
        """Kill what still runs in our namespaces (all started by this run), delete the
        bridge's links and every namespace, by name. Safe to call twice."""
        for name in reversed(self._made):
            for pid in ip("netns", "pids", name, check=False).split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        for host in self.hosts.values():
            ip("-n", self.hub, "link", "del", f"v{host.index}", check=False)
        ip("-n", self.hub, "link", "del", "br0", check=False)
        for name in reversed(self._made):
            ip("netns", "del", name, check=False)
        self._made.clear()
