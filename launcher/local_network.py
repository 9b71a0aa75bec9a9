"""The ports of a local network, chosen once and kept in its data dir (``network.json``).

Every child of ``atlas up`` gets explicit ports on its command line, so a
child restarted by the supervisor, the same command line typed by hand, and a
second ``atlas up`` on the same data dir all come back on the same addresses:
the client config, the proxy and the other edges keep knowing them. New ports
are picked below the kernel's ephemeral range, which outgoing connections and
port-0 binds draw from, so nothing else takes them between two runs by chance.
"""

from __future__ import annotations

import errno
import json
import random
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from requester.errors import SdkError

HOST = "127.0.0.1"
FILE_NAME = "network.json"
PICK_FROM = 20000
"""Lowest port picked for a new network (the top is the ephemeral range's start)."""


class NetworkSetupError(SdkError):
    """The network cannot start with these ports; the message says why and what to do."""

    status = 500
    code = "network_setup_failed"


class PortInUse(NetworkSetupError):
    """A port the network needs is held by another process."""

    status = 409
    code = "port_in_use"


@dataclass
class EdgePorts:
    port: int
    tunnel_port: int
    dht_port: int = 0
    """Its libtorrent listener, so its DHT node (``atlas up --dht``); 0 in an older file."""


@dataclass
class NetworkPorts:
    ledger: int
    edges: list[EdgePorts]
    proxy: int
    api: int

    def roles(self) -> list[tuple[str, int]]:
        """Each port with the name of the listener it belongs to."""
        named = [("ledger", self.ledger), ("proxy", self.proxy), ("mobile API", self.api)]
        for i, edge in enumerate(self.edges, 1):
            named += [(f"edge{i}", edge.port), (f"edge{i} tunnel", edge.tunnel_port)]
            named += [(f"edge{i} DHT", edge.dht_port)] if edge.dht_port else []
        return named


def plan_ports(data_dir: Path, edge_count: int, proxy_port: int, api_port: int = 0
               ) -> NetworkPorts:  # fmt: skip
    """The kept ports for ``edge_count`` edges, new ones for what is not kept yet.

    ``proxy_port`` 0 means "a free port, kept"; any other value is taken as
    given. ``api_port`` (the mobile API) given is taken as is; 0 means the kept
    one if the proxy keeps its port, else the proxy port + 1 (a free port, kept,
    when ``proxy_port`` is 0 too).
    """
    kept = load_ports(data_dir)
    taken = {port for _, port in kept.roles()} if kept else set()
    taken |= {proxy_port, api_port} - {0}

    def new() -> int:
        port = pick_free_ports(1, taken)[0]
        taken.add(port)
        return port

    ledger = kept.ledger if kept else new()
    edges = list(kept.edges[:edge_count]) if kept else []
    edges += [EdgePorts(new(), new()) for _ in range(edge_count - len(edges))]
    for edge in edges:
        edge.dht_port = edge.dht_port or new()
    proxy = proxy_port or (kept.proxy if kept else new())
    if api_port:
        api = api_port
    elif kept and kept.proxy == proxy:
        api = kept.api
    else:
        api = proxy_port + 1 if proxy_port else new()
    if api == proxy:
        raise NetworkSetupError(f"--api-port {api} is the proxy's port: pass another")
    return NetworkPorts(ledger, edges, proxy, api)


def load_ports(data_dir: Path) -> NetworkPorts | None:
    path = data_dir / FILE_NAME
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        ports = NetworkPorts(
            _port(raw["ledger"]),
            [_edge_ports(e) for e in raw["edges"]],
            _port(raw["proxy"]),
            _port(raw["api"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        hint = "delete it to pick new ports"
        raise NetworkSetupError(f"{path} is not a network file ({exc}); {hint}") from exc
    return ports


def _edge_ports(raw: dict[str, object]) -> EdgePorts:
    return EdgePorts(_port(raw["port"]), _port(raw["tunnel_port"]),
                     _port(raw.get("dht_port", 0), lowest=0))  # fmt: skip


def _port(value: object, lowest: int = 1) -> int:
    if not isinstance(value, int) or not lowest <= value < 65536:
        raise ValueError(f"not a port: {value!r}")
    return value


def save_ports(data_dir: Path, ports: NetworkPorts) -> None:
    (data_dir / FILE_NAME).write_text(json.dumps(asdict(ports), indent=2) + "\n")


def check_free(ports: list[tuple[str, int]], hint: str) -> None:
    """Raise :class:`PortInUse` naming the first port some other process holds."""
    for role, port in ports:
        if not port_free(port):
            raise PortInUse(f"port {HOST}:{port} ({role}) is in use; {hint}")


def port_free(port: int) -> bool:
    """Whether a listener could bind ``HOST:port`` now (as servers do, with SO_REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def pick_free_ports(count: int, taken: set[int]) -> list[int]:
    """``count`` free, distinct ports not in ``taken``, below the ephemeral range if it can."""
    top = _ephemeral_start()
    chooser = random.SystemRandom()
    picked: list[int] = []
    while len(picked) < count:
        port = chooser.randrange(PICK_FROM, top) if top > PICK_FROM + 1000 else _any_free_port()
        if port not in taken and port not in picked and port_free(port):
            picked.append(port)
    return picked


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _any_free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])
