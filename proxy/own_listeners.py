"""Is a URL or CONNECT target this proxy itself? Such a request is refused, not relayed.

Asked to fetch its own proxy port, the proxy hands the URL to an edge, the
edge fetches it from the proxy, which hands it to an edge again: one request
became 45 relays and a 502 after 90 s. Its own API port is no origin either.
So a target is refused when its port is one the proxy listens on and its host
is an address of this machine: loopback (``127.0.0.1``, ``localhost``,
``[::1]``, ``[::ffff:127.0.0.1]``...), unspecified (``0.0.0.0``, which
reaches local listeners), or any address an interface here holds (a proxy
bound to ``0.0.0.0`` is reached through them all). Names are resolved only
when the port matches, so ordinary requests cost no lookup.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from proxy.failures import Failure

DEFAULT_PORTS = {"http": 80, "https": 443}


def listener_ports(*urls: str) -> frozenset[int]:
    """The ports of the proxy's own ``http://HOST:PORT`` URLs (empty ones skipped)."""
    return frozenset(p for p in (urlsplit(u).port for u in urls if u) if p is not None)


async def loop_failure(host: str | None, port: int | None, ports: frozenset[int],
                       where: str) -> Failure | None:  # fmt: skip
    """Why a request for ``host:port`` is refused as the proxy's own address, or None."""
    if host is None or port is None or port not in ports:
        return None
    if not any(_is_local(address) for address in await _addresses(host, port)):
        return None
    return Failure(
        403, "proxy_loop", "This address is the Atlas proxy itself",
        f"{where} is this proxy's own listener (port {port}); relaying it would send the "
        "request around through the edges and back here. Open it directly, without the "
        "proxy (the proxy's own pages are at http://atlas.proxy/).",
    )  # fmt: skip


def url_target(url: str) -> tuple[str | None, int | None]:
    """The host and port an http(s) URL names (the scheme's port when none is given)."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # not a URL a listener of ours could answer (bad port or brackets)
        return None, None
    return parts.hostname, port


async def _addresses(host: str, port: int) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []  # a name that does not resolve reaches no listener here
    return [str(info[4][0]) for info in infos]


@lru_cache(maxsize=256)
def _is_local(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_unspecified:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((str(ip), 0))  # only an address this machine holds can be bound
        except OSError:
            return False
    return True
