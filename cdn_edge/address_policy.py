"""Which origin URLs, addresses and ports an edge may fetch: the rules of the SSRF guard.

An edge fetches URLs chosen by strangers, so without a guard anyone could make it
read its cloud metadata service, its operator's LAN or its own admin ports. These
are pure functions (no I/O); :mod:`cdn_edge.content.origin_fetch` applies them to the URL
of every hop, to every address a host name resolves to, and to the peer of every
connection, so DNS tricks and redirects cannot slip past.

The address rules are an explicit table, not ``ipaddress.is_global`` /
``is_private``: on Python 3.11.7 those misjudge IPv4-mapped IPv6 and several
special ranges (CVE-2024-4032), and they never look inside the IPv6 forms that
embed an IPv4 address (mapped, NAT64, 6to4, Teredo, ISATAP).

``allow_private`` (``--allow-private-origins``, for local networks and tests)
lifts the address and port rules, except for addresses that are never a unicast
origin at all: unspecified, multicast, broadcast and reserved.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from yarl import URL

from requester.errors import ServiceRefusal

MAX_URL_LENGTH = 8192
ALLOWED_SCHEMES = frozenset({"http", "https"})
WEB_PORTS = frozenset({80, 443})
FIRST_UNPRIVILEGED_PORT = 1024

DENIED_PORTS: dict[int, str] = {
    # Common non-HTTP services that listen above 1024 (ports below 1024 other than 80
    # and 443 are refused wholesale). All are below 32768, so an ephemeral port never
    # collides with this list.
    1080: "SOCKS proxy",
    1433: "MS SQL",
    1521: "Oracle",
    1723: "PPTP",
    1883: "MQTT",
    2049: "NFS",
    2181: "ZooKeeper",
    2375: "Docker API",
    2376: "Docker API",
    2379: "etcd",
    2380: "etcd",
    3306: "MySQL",
    3389: "RDP",
    4369: "Erlang port mapper",
    5060: "SIP",
    5061: "SIP",
    5432: "PostgreSQL",
    5672: "AMQP",
    5900: "VNC",
    5984: "CouchDB",
    6000: "X11",
    6379: "Redis",
    6443: "Kubernetes API",
    6665: "IRC",
    6666: "IRC",
    6667: "IRC",
    6668: "IRC",
    6669: "IRC",
    6697: "IRC",
    8200: "Vault",
    8500: "Consul",
    9042: "Cassandra",
    9092: "Kafka",
    9200: "Elasticsearch",
    9300: "Elasticsearch",
    10080: "Amanda",
    10250: "kubelet",
    10255: "kubelet",
    11211: "memcached",
    15672: "RabbitMQ management",
    27017: "MongoDB",
    27018: "MongoDB",
    27019: "MongoDB",
}

_LABEL = re.compile(r"[a-z0-9_-]{1,63}", re.ASCII)
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+", re.ASCII | re.IGNORECASE)
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_AUTHORITY = re.compile(r"[a-z][a-z0-9+.-]*://([^/?#\\]*)", re.ASCII | re.IGNORECASE)


class BadUrl(ServiceRefusal):
    """The URL is not an http(s) URL an edge will fetch."""

    status = 400
    code = "bad_url"


class BlockedAddress(ServiceRefusal):
    """The origin's address or port is off limits (the SSRF guard)."""

    status = 403
    code = "blocked_address"

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"origin {target} is refused: {reason}")
        self.target = target
        self.reason = reason


IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True)
class _Range:
    network: IPv4Network | IPv6Network
    reason: str
    never_unicast: bool = False
    """Refused even with allow_private: no origin can live there."""
    embeds: Callable[[IPv6Address], IPv4Address] | None = None
    """For IPv6 transition forms: the IPv4 address inside."""


def _low32(addr: IPv6Address) -> IPv4Address:
    return IPv4Address(int(addr) & 0xFFFF_FFFF)


def _mapped(addr: IPv6Address) -> IPv4Address:
    inner = addr.ipv4_mapped
    assert inner is not None
    return inner


def _sixtofour(addr: IPv6Address) -> IPv4Address:
    inner = addr.sixtofour
    assert inner is not None
    return inner


def _teredo_client(addr: IPv6Address) -> IPv4Address:
    pair = addr.teredo  # the client address is stored XOR-obfuscated; this undoes it
    assert pair is not None
    return pair[1]


def _v4(net: str, reason: str, *, never_unicast: bool = False) -> _Range:
    return _Range(IPv4Network(net), reason, never_unicast)


def _v6(
    net: str,
    reason: str,
    *,
    never_unicast: bool = False,
    embeds: Callable[[IPv6Address], IPv4Address] | None = None,
) -> _Range:
    return _Range(IPv6Network(net), reason, never_unicast, embeds)


# First match wins, so narrower ranges come before the ranges that contain them.
_IPV4_RANGES = (
    _v4("0.0.0.0/8", "unspecified ('this network')", never_unicast=True),
    _v4("10.0.0.0/8", "private"),
    _v4("100.64.0.0/10", "CGNAT (shared address space)"),
    _v4("127.0.0.0/8", "loopback"),
    _v4("169.254.0.0/16", "link-local"),
    _v4("172.16.0.0/12", "private"),
    _v4("192.0.0.0/24", "IETF protocol assignments"),
    _v4("192.0.2.0/24", "documentation (TEST-NET-1)"),
    _v4("192.88.99.0/24", "6to4 relay anycast"),
    _v4("192.168.0.0/16", "private"),
    _v4("198.18.0.0/15", "benchmarking"),
    _v4("198.51.100.0/24", "documentation (TEST-NET-2)"),
    _v4("203.0.113.0/24", "documentation (TEST-NET-3)"),
    _v4("224.0.0.0/4", "multicast", never_unicast=True),
    _v4("255.255.255.255/32", "broadcast", never_unicast=True),
    _v4("240.0.0.0/4", "reserved", never_unicast=True),
)
_IPV6_RANGES = (
    _v6("::/128", "unspecified", never_unicast=True),
    _v6("::1/128", "loopback"),
    _v6("::ffff:0:0/96", "IPv4-mapped", embeds=_mapped),
    _v6("::ffff:0:0:0/96", "IPv4-translated", embeds=_low32),
    _v6("::/96", "IPv4-compatible (deprecated)", embeds=_low32),
    _v6("64:ff9b::/96", "NAT64", embeds=_low32),
    _v6("64:ff9b:1::/48", "NAT64 (local use)"),
    _v6("100::/64", "discard-only"),
    _v6("2001::/32", "Teredo", embeds=_teredo_client),
    _v6("2001:2::/48", "benchmarking"),
    _v6("2001:10::/28", "ORCHID (deprecated)"),
    _v6("2001:20::/28", "ORCHIDv2"),
    _v6("2001:db8::/32", "documentation"),
    _v6("2002::/16", "6to4", embeds=_sixtofour),
    _v6("3fff::/20", "documentation"),
    _v6("5f00::/16", "SRv6 segment identifiers"),
    _v6("fc00::/7", "unique local (private)"),
    _v6("fe80::/10", "link-local"),
    _v6("fec0::/10", "site-local (deprecated)"),
    _v6("ff00::/8", "multicast", never_unicast=True),
)
_GLOBAL_UNICAST = IPv6Network("2000::/3")
_ISATAP_IDS = frozenset({0x0000_5EFE, 0x0200_5EFE})


def check_address(ip: str | IPAddress, *, allow_private: bool) -> None:
    """Refuse an origin address that is not a public unicast host, with the reason."""
    addr = _parse_address(ip) if isinstance(ip, str) else ip
    _check(addr, str(ip), allow_private)


def _parse_address(text: str) -> IPAddress:
    try:
        return ip_address(text.removeprefix("[").removesuffix("]"))
    except ValueError:
        raise BlockedAddress(f"address {text!r}", "not an IP address") from None


def _check(addr: IPAddress, shown: str, allow_private: bool) -> None:
    ranges = _IPV4_RANGES if isinstance(addr, IPv4Address) else _IPV6_RANGES
    hit = next((r for r in ranges if addr in r.network), None)
    embeds = hit.embeds if hit else None
    reason = hit.reason if hit else ""
    if hit is None and isinstance(addr, IPv6Address):
        if addr not in _GLOBAL_UNICAST:
            raise BlockedAddress(f"address {shown}", "reserved (outside 2000::/3)")
        if (int(addr) >> 32) & 0xFFFF_FFFF in _ISATAP_IDS:
            embeds, reason = _low32, "ISATAP"
    if embeds is not None:
        assert isinstance(addr, IPv6Address)
        inner = embeds(addr)
        try:
            _check(inner, str(inner), allow_private)
        except BlockedAddress as exc:
            raise BlockedAddress(
                f"address {shown}", f"{reason} form of {inner} ({exc.reason})"
            ) from None
        if hit is not None and not allow_private:
            raise BlockedAddress(f"address {shown}", f"{reason} form of {inner}")
    elif hit is not None and (hit.never_unicast or not allow_private):
        raise BlockedAddress(f"address {shown}", reason)
    if isinstance(addr, IPv6Address) and addr.scope_id and not allow_private:
        raise BlockedAddress(f"address {shown}", "has a zone id (scoped, not global)")


def check_port(port: int | None, *, allow_private: bool) -> None:
    """Refuse ports of non-web services; HTTP(S) origins live on 80, 443 or high ports."""
    if port is None or not 0 < port <= 65535:
        raise BlockedAddress(f"port {port}", "not a valid TCP port")
    if allow_private or port in WEB_PORTS:
        return
    if port < FIRST_UNPRIVILEGED_PORT:
        raise BlockedAddress(f"port {port}", "well-known port of a non-web service")
    service = DENIED_PORTS.get(port)
    if service is not None:
        raise BlockedAddress(f"port {port}", f"{service} port")


def parse_origin_url(url: str) -> URL:
    """Parse a URL a requester (or a redirect) asks for; refuse anything but plain http(s)."""
    if len(url) > MAX_URL_LENGTH:
        raise BadUrl(f"URL is {len(url)} characters long, limit {MAX_URL_LENGTH}")
    if _CONTROL_OR_SPACE.search(url):
        raise BadUrl("URL contains whitespace or control characters")
    try:
        parsed = URL(url).with_fragment(None)
        host, decoded_host, _ = parsed.raw_host, parsed.host, parsed.port
    except Exception as exc:  # yarl raises ValueError, IndexError, ... on malformed input
        raise BadUrl(f"URL does not parse: {exc}") from None
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise BadUrl(f"scheme {parsed.scheme!r} is not fetched; only http and https are")
    written = _AUTHORITY.match(url)
    authority = written.group(1) if written else ""
    if "@" in authority or "@" in (parsed.raw_authority or ""):
        raise BadUrl("URL carries user info (user:password@); origins get no credentials")
    if not host or not decoded_host:
        raise BadUrl("URL has no host")
    if ":" in host:
        try:
            ip_address(decoded_host)
        except ValueError:
            raise BadUrl(f"host {host!r} is not a valid IPv6 address") from None
    elif authority.startswith("[") or not all(
        _LABEL.fullmatch(label) for label in host.removesuffix(".").split(".")
    ):
        raise BadUrl(f"host {host!r} is not a valid host name")
    return parsed


def check_origin_url(url: URL, *, allow_private: bool) -> None:
    """Refuse a parsed URL whose port, or whose host written as an IP address, is off limits.

    Host names are not resolved here: the fetcher checks every address they resolve to.
    """
    check_port(url.port, allow_private=allow_private)
    host = url.host or ""
    if ":" in host:
        check_address(host, allow_private=allow_private)
        return
    numeric = _numeric_ipv4(host)
    if numeric is None:
        return
    check_address(numeric, allow_private=allow_private)
    if str(numeric) != host:
        # Resolvers and HTTP clients disagree on these forms; only the plain one is fetched.
        raise BadUrl(f"host {host!r} is a non-canonical form of {numeric}; write {numeric}")


def _numeric_ipv4(host: str) -> IPv4Address | None:
    """The IPv4 address a numeric host means to inet_aton (127.1, 0x7f.1, 2130706433, ...).

    As in the WHATWG URL standard, a host whose last label is a number is an IPv4
    address or nothing; None means the host is a name.
    """
    labels = host.removesuffix(".").split(".")
    if not _NUMBER.fullmatch(labels[-1]):
        return None
    if len(labels) > 4 or not all(_NUMBER.fullmatch(label) for label in labels):
        raise BadUrl(f"host {host!r} ends in a number but is not an IPv4 address")
    try:
        parts = [_inet_aton_part(label) for label in labels]
    except ValueError:
        raise BadUrl(f"host {host!r} is not a valid IPv4 address") from None
    *head, last = parts
    if any(part > 255 for part in head) or last >= 256 ** (5 - len(parts)):
        raise BadUrl(f"host {host!r} is out of the IPv4 range")
    value = last
    for index, part in enumerate(head):
        value += part << (8 * (3 - index))
    return IPv4Address(value)


def _inet_aton_part(label: str) -> int:
    lowered = label.lower()
    if lowered.startswith("0x"):
        return int(lowered[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8)
    return int(label)
