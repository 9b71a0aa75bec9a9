"""Finding edges and providers through the BitTorrent DHT, knowing only bootstrap nodes.

A requester runs a libtorrent session of its own with the DHT only (no torrents,
no LSD/UPnP/NAT-PMP), bootstrapping from the nodes it was given and nothing else,
read-only (BEP 43: it answers no queries and joins no routing table). Then:

- :meth:`Discovery.edges`: ``get_peers`` of the rendezvous key every DHT edge
  announces, gives addresses; each is asked ``GET /v1/info`` for its node id, and
  that node's advert is read from the DHT and checked with PyNaCl
  (:func:`requester.dht_keys.read_advert`). Only edges with a valid advert count,
  and their URLs come from the signed advert, not from the address.
- :meth:`Discovery.providers`: ``get_peers`` of ``content_target(content_id)``;
  at most :data:`MAX_ASKED` addresses are asked for signed provider records of
  that content, and only unexpired, matching records by the edge at that address
  count.
- :meth:`Discovery.origin`: the URL in the advert of the edge that signed a manifest
  head (its ``edge_id`` is the advert's key), so the edge that fetched a content is
  found even when nobody listed it; :meth:`Discovery.providers_for` gives both, as the
  SDK's downloads take them (``AtlasClient(finder=...)``).

Addresses are checked first: loopback and private ones only with ``allow_private``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import libtorrent as lt

from requester.dht_keys import MutableItem, get_advert, read_advert
from requester.dht_nodes import nodes_text
from requester.errors import SdkError
from requester.protocol import ManifestHead, NodeId, ProtocolError, b64url_decode
from requester.protocol.dht import RENDEZVOUS_TARGET, content_target
from requester.protocol.node_advert import NodeAdvert
from requester.protocol.provider_record import MAX_RECORD_BYTES, ProviderRecord

MAX_ASKED = 16
"""Addresses from one lookup that are asked anything over HTTP."""
BLOCK_RATELIMIT = 1000
"""Packets a second a node may send this read-only one (libtorrent's default: 5)."""
LOOKUP_WAIT = 5.0
"""Longest a DHT lookup waits for libtorrent to finish it (not found: an empty answer)."""
ADVERTS_AT_ONCE = 8
"""Advert gets in flight at once: the nodes near each key all answer with a 1000-byte item,
and 16 at once on a 16-edge LAN overflowed the UDP receive buffer (lost answers left the
lookup waiting out LOOKUP_WAIT; docs/edge.md, A network of hosts on one machine)."""
_CATEGORY = lt.alert.category_t
_ALERTS = (
    _CATEGORY.dht_notification | _CATEGORY.dht_operation_notification
    | _CATEGORY.stats_notification
)  # fmt: skip
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=3, sock_connect=2)


class NoEdgeFound(SdkError):
    """The DHT reached through the bootstrap nodes lists no edge with a valid advert."""

    status = 503
    code = "no_edge_found"
    title = "No Atlas edge found"


@dataclass(frozen=True)
class FoundEdge:
    url: str
    """The edge's first HTTP URL, from its signed advert."""
    advert: NodeAdvert


class Discovery:
    """A DHT-only libtorrent session; ``async with Discovery(nodes) as d``."""

    def __init__(
        self, bootstrap: tuple[tuple[str, int], ...], session: aiohttp.ClientSession, *,
        allow_private: bool = False, listen: str = "127.0.0.1:0",
    ) -> None:  # fmt: skip
        self.bootstrap = bootstrap
        self.allow_private = allow_private
        self._http = session
        self._settings: lt.settings_pack = {
            "enable_dht": True, "enable_lsd": False, "enable_upnp": False,
            "enable_natpmp": False, "listen_interfaces": listen,
            "dht_bootstrap_nodes": nodes_text(bootstrap), "dht_read_only": True,
            # libtorrent blocks an address sending over 5 packets/s for 5 minutes, answers
            # included: a few lookups a second to a small network got its own answers blocked
            "dht_block_ratelimit": BLOCK_RATELIMIT,
            "dht_restrict_routing_ips": not allow_private,
            "dht_restrict_search_ips": not allow_private,
            "alert_mask": int(_ALERTS),
        }  # fmt: skip
        self._ses: lt.session | None = None
        self._lock = asyncio.Lock()
        self._stats_asked = self._stats_seen = 0

    async def _bootstrapped(self, wait: float = 3.0) -> None:
        """Wait until the routing table has a node (a lookup before that finds nothing)."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _node_count(self._lt) > 0:
                return
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> Discovery:
        self._ses = lt.session(self._settings)
        for node in self.bootstrap:
            self._ses.add_dht_node(node)
        await self._bootstrapped()
        return self

    @property
    def _lt(self) -> lt.session:
        assert self._ses is not None, "use Discovery in `async with`"
        return self._ses

    async def __aexit__(self, *exc_info: object) -> None:
        box, self._ses = [self._ses], None
        await asyncio.to_thread(box.clear)  # lt.session's destructor blocks

    @property
    def settings(self) -> dict[str, object]:
        """libtorrent's settings in effect (tests check the bootstrap nodes)."""
        return dict(self._lt.get_settings())

    async def edges(self, wait: float = LOOKUP_WAIT) -> list[FoundEdge]:
        """Edges announcing the rendezvous key, each with its verified advert."""
        addresses = await self.peers(RENDEZVOUS_TARGET, wait)
        ids = await asyncio.gather(*(self._node_id(a) for a in addresses[:MAX_ASKED]))
        adverts = await self.adverts([i for i in dict.fromkeys(ids) if i is not None], wait)
        return [FoundEdge(a.http_urls[0], a) for a in adverts]

    async def providers(self, content_id: bytes, wait: float = LOOKUP_WAIT) -> list[str]:
        """URLs of edges that announced ``content_id`` and sign a provider record of it."""
        addresses = await self.peers(content_target(content_id), wait)
        found = await asyncio.gather(*(self._record(a, content_id) for a in addresses[:MAX_ASKED]))
        return list(dict.fromkeys(url for url in found if url is not None))

    async def origin(self, edge_id: NodeId, wait: float = LOOKUP_WAIT) -> str | None:
        """The first URL in the valid advert of ``edge_id`` (the edge that signed a head),
        if the address rules allow it; None when it has none in the DHT."""
        for advert in await self.adverts([edge_id], wait):
            url = advert.http_urls[0].rstrip("/")
            host = urlsplit(url).hostname or ""
            local_name = host == "localhost" or host.endswith(".localhost")
            named = _is_name(host) and (self.allow_private or not local_name)
            if advert.node_id == edge_id and (named or self._allowed(host)):
                return url
        return None

    async def providers_for(self, head: ManifestHead) -> list[str]:
        """Providers of ``head``'s content: the edge that signed it, from its advert, then
        the edges announcing the content with a signed provider record of it."""
        origin = await self.origin(head.edge_id)
        found = await self.providers(head.content_id)
        return list(dict.fromkeys([origin, *found] if origin else found))

    async def peers(self, target: bytes, wait: float = LOOKUP_WAIT) -> list[tuple[str, int]]:
        """Addresses announced under ``target`` (BEP 5), those the address rules allow."""
        digest = lt.sha1_hash(target)
        found: list[tuple[str, int]] = []

        def take(alert: Any) -> bool | None:
            if isinstance(alert, lt.dht_get_peers_reply_alert) and alert.info_hash == digest:
                found.extend((str(h), int(p)) for h, p in alert.peers())
            elif isinstance(alert, lt.dht_stats_alert):  # replies come per node: done when
                active = alert.active_requests  # the lookup has left libtorrent's list
                return True if not any(r["type"] == "get_peers" for r in active) else None
            return None

        await self._lookup(lambda s: s.dht_get_peers(digest), take, wait)
        return [a for a in dict.fromkeys(found) if self._allowed(a[0])]

    async def adverts(self, ids: list[NodeId], wait: float = LOOKUP_WAIT) -> list[NodeAdvert]:
        """The valid adverts of ``ids`` found in the DHT (each the highest ``seq`` seen)."""
        best: dict[bytes, MutableItem] = {}
        pending, waiting = {i.raw for i in ids}, list(dict.fromkeys(ids))

        def take(alert: Any) -> bool | None:
            if isinstance(alert, lt.dht_mutable_item_alert) and bytes(alert.key) in pending:
                item = MutableItem.of_alert(alert)
                if item is not None and item.seq >= getattr(best.get(item.key), "seq", -1):
                    best[item.key] = item
                if alert.authoritative:
                    pending.discard(bytes(alert.key))
                    ask(self._lt)
            return True if not pending else None

        def ask(session: lt.session) -> None:
            while waiting and len(pending) - len(waiting) < ADVERTS_AT_ONCE:
                get_advert(session, waiting.pop(0))

        if ids:
            await self._lookup(ask, take, wait)
        now, adverts = int(time.time()), []
        for item in best.values():
            try:
                adverts.append(read_advert(item, now))
            except ProtocolError:
                continue
        return adverts

    async def _lookup(self, ask: Any, take: Any, wait: float) -> Any:
        """Run one DHT request and pop alerts until ``take`` returns non-None or time is up."""
        async with self._lock:
            session = self._lt
            ask(session)
            floor, deadline = self._stats_asked, time.monotonic() + wait
            while (left := deadline - time.monotonic()) > 0:
                session.post_dht_stats()  # which lookups still run (dht_stats_alert)
                self._stats_asked += 1
                await asyncio.to_thread(session.wait_for_alert, int(min(left, 0.05) * 1000))
                for alert in session.pop_alerts():
                    if isinstance(alert, lt.dht_stats_alert):
                        self._stats_seen += 1  # they come in order: skip those asked before
                        if self._stats_seen <= floor:  # this lookup was
                            continue
                    found = take(alert)
                    if found is not None:
                        return found
            return None

    def _allowed(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if address.is_unspecified or address.is_multicast:
            return False
        return self.allow_private or address.is_global

    async def _node_id(self, address: tuple[str, int]) -> NodeId | None:
        try:
            async with self._http.get(f"{_base(address)}/v1/info", timeout=HTTP_TIMEOUT) as r:
                info = await r.json()
            return NodeId(bytes.fromhex(str(info["node_id"])))
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError,
                ProtocolError):  # fmt: skip
            return None

    async def _record(self, address: tuple[str, int], content_id: bytes) -> str | None:
        base, now = _base(address), int(time.time())
        try:
            url = f"{base}/v1/providers/{content_id.hex()}"
            async with self._http.get(url, timeout=HTTP_TIMEOUT) as r:
                listed = (await r.json()).get("providers", []) if r.status == 200 else []
            for item in listed[:32]:
                raw = b64url_decode(item["record"], MAX_RECORD_BYTES, "record")
                record = ProviderRecord.decode(raw)
                own = record.url.rstrip("/") == base
                if record.content_id == content_id and record.expires_at > now and own:
                    return base
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError,
                AttributeError, ProtocolError):  # fmt: skip
            return None
        return None


def _base(address: tuple[str, int]) -> str:
    host, port = address
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _node_count(session: lt.session) -> int:
    with warnings.catch_warnings():  # status() is deprecated; its dht_nodes is what we need
        warnings.simplefilter("ignore", DeprecationWarning)
        return int(session.status().dht_nodes)


def _is_name(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(host)
    return False
