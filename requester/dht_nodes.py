"""DHT node addresses as settings are written: ``HOST:PORT[,HOST:PORT...]``.

An edge's ``--dht-bootstrap`` and a requester's ``--bootstrap`` name the nodes a
libtorrent session may bootstrap from, and nothing else: libtorrent's default is a
public host, which a test network must never contact. The text is kept in the form
libtorrent's ``dht_bootstrap_nodes`` setting takes.
"""

from __future__ import annotations

import ipaddress
import re

from requester.setting_units import Unit

MAX_NODES = 16
_NODE = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>[0-9]{1,5})")


def parse_nodes(text: str) -> tuple[tuple[str, int], ...]:
    """The ``(host, port)`` pairs of ``text``; ValueError with the reason when malformed."""
    found = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        m = _NODE.fullmatch(part)
        if m is None or not 0 < int(m["port"]) <= 65535:
            raise ValueError(f"{part[:60]!r} is not HOST:PORT (a port 1..65535)")
        host = m["v6"] or m["host"]
        if m["v6"]:
            ipaddress.IPv6Address(host)
        found.append((host, int(m["port"])))
    if len(found) > MAX_NODES:
        raise ValueError(f"at most {MAX_NODES} DHT nodes, not {len(found)}")
    return tuple(found)


def nodes_text(nodes: tuple[tuple[str, int], ...]) -> str:
    """Back to ``HOST:PORT,...`` (libtorrent's ``dht_bootstrap_nodes`` form)."""
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in nodes)


def _normalize(text: str) -> str:
    return nodes_text(parse_nodes(text))


DHT_NODES: Unit[str] = Unit("", _normalize, str, "HOST:PORT[,...]")
"""A list of DHT nodes, normalized; empty: none."""
