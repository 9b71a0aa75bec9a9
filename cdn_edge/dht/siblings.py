"""Sibling caches through the DHT (docs/edge.md, Sibling caches): the URLs this edge holds
fresh are announced, and the edges announcing a URL are asked for their copy of it.

- Announces: ``url_target(url)`` (SHA-1 of ``atlas.url.v1`` and the normalized URL) with
  the edge's HTTP port, for URLs sealed in the store and fresh by their caching rules,
  the most recently used first, at most :data:`MAX_URL_ANNOUNCES` per
  :data:`~cdn_edge.dht.publisher.ANNOUNCE_INTERVAL` and one per
  :data:`~cdn_edge.dht.publisher.CONTENT_GAP`. A URL gone stale or evicted is not
  announced again; the DHT forgets it within 30 minutes, and an edge asked for it
  meanwhile answers ``504 not_cached``.
- Asking: on a miss the edge looks the URL's target up (at most :data:`LOOKUP_WAIT`
  seconds), and asks at most :data:`MAX_ASKED` of the addresses found
  ``POST /v1/fetch`` with ``Cache-Control: only-if-cached`` (each at most
  :data:`ASK_TIMEOUT`). :func:`check_offer` keeps an answer only if its head verifies,
  names the same normalized URL, is fresh by the caching headers it signs and comes
  with its seal; :mod:`cdn_edge.content.sibling_fetch` does the rest.

Lookups run on a read-only DHT session of their own (:class:`requester.discovery.Discovery`,
bootstrapped from this edge's own DHT node), so the edge's session answers queries as
before. ``--no-sibling-caches`` turns both halves off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import libtorrent as lt

from cdn_edge.content import http_cache
from cdn_edge.content.sibling_fetch import SiblingOffer
from cdn_edge.dht.publisher import ANNOUNCE_INTERVAL, CONTENT_GAP
from cdn_edge.dht.settings import listen_host
from cdn_edge.edge_state import Edge
from cdn_edge.torrent import TorrentSession
from requester.dht_nodes import parse_nodes
from requester.discovery import Discovery
from requester.protocol import ManifestHead, ProtocolError, UrlSource, b64url_decode
from requester.protocol.dht import normalize_url, url_target
from requester.protocol.manifest import MAX_HEAD_BYTES, PARTIAL_CONTENT, SEAL_SIZE
from requester.protocol.provider_record import MAX_RECORD_BYTES, ProviderRecord

log = logging.getLogger(__name__)

LOOKUP_WAIT = 1.5
"""Seconds a DHT lookup of a URL may take; a miss costs little more than this."""
ASK_TIMEOUT = aiohttp.ClientTimeout(total=2, sock_connect=1)
MAX_ASKED = 4
"""Siblings asked per miss: a few copies are enough, and each costs a request."""
MAX_URL_ANNOUNCES = 128
MAX_WAITING = 8
"""Lookups waiting for the DHT session (one runs at a time); a miss beyond them goes straight
to the origin, so a burst of misses is not queued behind each other's lookups."""
FRESH_MARGIN = 5.0
"""A copy fresh for less than this many seconds more is not worth taking."""
CLOCK_SKEW = 60
"""A head created further in the future than this is refused."""
TICK = 1.0


def sibling_jobs(edge: Edge, torrents: TorrentSession) -> list[Coroutine[Any, Any, None]]:
    """Unless ``--no-sibling-caches``: ask siblings on a miss; the loop to run beside the edge."""
    if edge.config.no_sibling_caches:
        return []
    siblings = SiblingCaches(edge, lambda: torrents.lt_session)

    def remember(record: ProviderRecord) -> None:  # our tracker lists the sibling's copy too
        edge.tracker.add(record, int(time.time()))

    edge.content.use_siblings(siblings, remember)
    return [siblings.run()]


class SiblingCaches:
    def __init__(self, edge: Edge, session: Callable[[], lt.session]) -> None:
        self._edge = edge
        self._session = session
        self._dht: Discovery | None = None
        self._http: aiohttp.ClientSession | None = None
        self._announced: dict[str, float] = {}
        self._budget, self._budget_reset, self._next = MAX_URL_ANNOUNCES, 0.0, 0.0
        self._waiting = 0
        self.announces = 0
        """URL announces made since start."""

    async def run(self) -> None:
        """Announce fresh URLs until cancelled; siblings are asked only while this runs."""
        config = self._edge.config
        own = (self._edge.dht_address,) if self._edge.dht_address else ()
        nodes = parse_nodes(",".join((*own, config.dht_bootstrap)))
        listen = f"{listen_host(config)}:0"
        async with (
            aiohttp.ClientSession() as http,
            Discovery(nodes, http, allow_private=config.dht_allow_private, listen=listen) as dht,
        ):
            self._dht, self._http = dht, http
            try:
                while True:
                    try:
                        await self._announce(time.monotonic())
                    except Exception:
                        log.exception("announcing URLs to sibling caches")
                    await asyncio.sleep(TICK)
            finally:
                self._dht = self._http = None

    async def _announce(self, now: float) -> None:
        if now >= self._budget_reset:
            self._budget, self._budget_reset = MAX_URL_ANNOUNCES, now + ANNOUNCE_INTERVAL
        public = self._edge.announcer.public_url
        if self._budget <= 0 or now < self._next or not public:
            return
        fresh = await self._edge.content.fresh_urls(MAX_URL_ANNOUNCES)
        self._announced = {u: at for u, at in self._announced.items() if u in fresh}
        due = [u for u in fresh if now - self._announced.get(u, -ANNOUNCE_INTERVAL)
               >= ANNOUNCE_INTERVAL]  # fmt: skip
        if not due:
            return
        url, self._announced[due[0]] = due[0], now
        try:
            target = url_target(url)
        except ProtocolError:
            return  # a URL no sibling could name the same way
        split = urlsplit(public)
        port = split.port or (443 if split.scheme == "https" else 80)
        self._session().dht_announce(lt.sha1_hash(target), port, 0)
        self.announces += 1
        self._budget -= 1
        self._next = now + CONTENT_GAP

    async def offers(
        self, url: str, headers: Mapping[str, str]
    ) -> AsyncGenerator[SiblingOffer, None]:
        """Checked copies of ``url`` from the siblings that announce it, as they answer."""
        dht, http = self._dht, self._http
        if dht is None or http is None or self._waiting >= MAX_WAITING:
            return
        try:
            target = url_target(url)
        except ProtocolError:
            return  # a URL no sibling could have announced (user info, say)
        self._waiting += 1
        try:
            found = await dht.peers(target, LOOKUP_WAIT)
        finally:
            self._waiting -= 1
        own = urlsplit(self._edge.announcer.public_url or "")
        bases = [_base(a) for a in found if (a[0], a[1]) != (own.hostname, own.port)]
        tasks = [asyncio.create_task(self._ask(http, b, url, headers)) for b in bases[:MAX_ASKED]]
        try:
            for answer in asyncio.as_completed(tasks):
                offer = await answer
                if offer is not None:
                    yield offer
        finally:
            for task in tasks:
                task.cancel()

    async def _ask(self, http: aiohttp.ClientSession, base: str, url: str,
                   headers: Mapping[str, str]) -> SiblingOffer | None:  # fmt: skip
        ask = {"url": url, "headers": {**headers, "cache-control": "only-if-cached"}}
        try:
            async with http.post(f"{base}/v1/fetch", json=ask, timeout=ASK_TIMEOUT) as resp:
                if resp.status != 200:
                    return None
                body = await resp.json()
            offer = check_offer(base, url, headers, body, time.time())
            return await self._with_record(http, offer)
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError,
                ProtocolError) as exc:  # fmt: skip
            log.info("sibling %s: no usable copy of %s: %s", base, url[:200], exc)
            return None

    @staticmethod
    async def _with_record(http: aiohttp.ClientSession, offer: SiblingOffer) -> SiblingOffer:
        """The offer with the sibling's signed provider record of it, if it lists one."""
        cid = offer.head.content_id
        async with http.get(f"{offer.provider}/v1/providers/{cid.hex()}",
                            timeout=ASK_TIMEOUT) as resp:  # fmt: skip
            listed = (await resp.json()).get("providers", []) if resp.status == 200 else []
        now = int(time.time())
        for item in listed[:32]:
            record = ProviderRecord.decode(
                b64url_decode(item["record"], MAX_RECORD_BYTES, "record")
            )
            mine = record.url.rstrip("/") == offer.provider
            if mine and record.content_id == cid and record.expires_at > now:
                return SiblingOffer(offer.provider, offer.head, offer.head_bytes,
                                    offer.seal_bytes, offer.policy, record)  # fmt: skip
        return offer


def check_offer(base: str, url: str, headers: Mapping[str, str], body: object,
                now: float) -> SiblingOffer:  # fmt: skip
    """A sibling's ``/v1/fetch`` answer as an offer, or ProtocolError saying why not: a
    verified head for the same normalized URL, fresh by its own caching headers, sealed."""
    if not isinstance(body, dict):
        raise ProtocolError("the answer is not a JSON object")
    head_bytes = b64url_decode(str(body.get("head", "")), MAX_HEAD_BYTES, "head")
    head = ManifestHead.decode(head_bytes)  # refuses a head its edge did not sign
    source = head.source
    if not isinstance(source, UrlSource) or normalize_url(source.url) != normalize_url(url):
        raise ProtocolError("the head names another URL")
    if head.status == PARTIAL_CONTENT:
        raise ProtocolError("a partial response is no copy of the URL")
    if not body.get("seal"):
        raise ProtocolError("the copy is not sealed")
    seal_bytes = b64url_decode(str(body["seal"]), SEAL_SIZE, "seal")
    head.verify_seal(seal_bytes)
    if head.created_at > now + CLOCK_SKEW:
        raise ProtocolError("the head was made in the future")
    policy = http_cache.policy(head.status, headers, list(head.headers), float(head.created_at))
    if not policy.storable or policy.fresh_until < now + FRESH_MARGIN:
        raise ProtocolError("the copy is not fresh by its own caching headers")
    return SiblingOffer(base, head, head_bytes, seal_bytes, policy, None)


def _base(address: tuple[str, int]) -> str:
    host, port = address
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
