"""The SDK's front door: ``AtlasClient.stream(url)`` yields verified bytes in order.

It asks an edge to fetch the URL, checks the signed head, gathers providers
(the configured edges, which replicate on demand, plus whoever the trackers
name, on probation: :mod:`requester.provider_trust`), and runs a
:class:`ChunkScheduler` over them. The proxy, the mobile API
and ``atlas fetch`` all use it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp

from requester.bidding import Bidding
from requester.chunk_client import Account, ChunkClient, Payer
from requester.download_progress import Progress
from requester.downloader import ChunkScheduler
from requester.errors import ORIGIN_TITLES, SdkError
from requester.protocol import ContentVerifier, ManifestHead, ProtocolError, Seal, b64url_decode
from requester.protocol.manifest import MAX_HEAD_BYTES, SEAL_SIZE
from requester.provider_trust import ProviderTrust, TrustPolicy
from requester.single_chunk import single_chunk
from requester.tracker_lookup import Listed, tracked

EDGE_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=5)


class EdgeUnavailable(SdkError):
    """No configured edge could fetch the URL; carries each edge's reason. An edge that says
    the origin is at fault (``ORIGIN_TITLES``) makes that problem the answer, as it said it."""

    status = 502
    code = "edge_unreachable"
    title = "No Atlas edge could be reached"

    def __init__(self, message: str, problems: Sequence[tuple[str, dict[str, Any]]] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)
        """``(edge, problem)`` for each edge that answered with a JSON problem (a 5xx)."""
        for edge, doc in self.problems:
            code = str(doc.get("type", "")).rsplit("/", 1)[-1]
            if code in ORIGIN_TITLES:
                status = doc.get("status")
                self.status = status if isinstance(status, int) and 500 <= status < 600 else 502
                self.code, self.title = code, ORIGIN_TITLES[code]
                self.message = f"{doc.get('detail') or code}; reported by the Atlas edge {edge}"
                break


class TorrentListing(SdkError):
    """The URL named a torrent but no file in it; ``files`` is what it holds (``message``:
    the first 50 paths)."""

    status = 300
    code = "torrent_listing"
    title = "Choose a file in this torrent"

    def __init__(self, files: list[dict[str, Any]]) -> None:
        super().__init__(f"the torrent holds {len(files)} files: name one")
        self.files = files
        self.message = ", ".join(str(f.get("path")) for f in files[:50])


class FetchRefused(SdkError):
    """An edge refused the fetch (bad URL, blocked address...): its status, code and detail;
    ``edge_problem`` is its whole problem document."""

    status = 400
    code = "refused"
    title = "The edge refused the request"

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"the edge refused: {problem.get('detail')}")
        self.edge_problem = problem
        self.status = status if 400 <= status < 600 else 502
        self.code = str(problem.get("type", "")).rsplit("/", 1)[-1] or "refused"
        self.message = str(problem.get("detail") or f"{status}: {problem.get('detail', problem)}")
        self.title = _REFUSED_TITLES.get(status, self.title)


_REFUSED_TITLES = {403: "This address is blocked", 400: "This address cannot be fetched"}


@dataclass
class Download:
    """One content being downloaded: its verified head and the chunk scheduler."""

    head: ManifestHead
    origin_edge: str
    scheduler: ChunkScheduler
    _session: aiohttp.ClientSession
    discovery: Callable[[], Coroutine[Any, Any, None]] | None = None
    """Tracker look-ups that add providers; run beside the chunks, stopped with them."""

    @property
    def progress(self) -> Progress:
        return self.scheduler.progress

    def provider_summary(self) -> dict[str, dict[str, Any]]:
        """Per provider: chunks, those of them another provider delivered first (``raced``:
        paid and thrown away), the requests that brought them, wire bytes, vouchers signed
        (``paid``), the lane that served it (``paid``, ``free``, ``mixed``, or None before a
        chunk), bytes per lane, what it charged (``Atlas-Price`` summed) and per paid MiB
        (base units, None if nothing), its rate in bytes/s, and its market
        (:meth:`requester.bidding.Bidding.describe`)."""
        market = self.scheduler.market
        out = {}
        for p, s in self.progress.providers.items():
            price = s.price_per_mib_paid
            out[p] = {
                "chunks": s.chunks, "raced": s.raced, "requests": s.requests, "bytes": s.bytes,
                "paid": str(s.paid), "lane": s.lane,
                "paid_bytes": s.paid_bytes, "free_bytes": s.free_bytes, "charged": str(s.charged),
                "price_per_mib_paid": None if price is None else str(price),
                "rate": round(s.rate), **(market.describe(p) if market else {"market": None}),
            }  # fmt: skip
        return out

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """Verified chunks in order; at the end, the seal is checked against them all."""
        finding = None if self.discovery is None else asyncio.create_task(self.discovery())
        self.discovery = None
        try:
            async for data in self.scheduler.chunks():
                yield data
                del data  # not held while the next chunk is awaited: memory is the window
        finally:
            if finding is not None:
                finding.cancel()
        verifier = self.scheduler.verifier
        if verifier.seal is None:
            seal = await _seal_from(self._session, self.origin_edge, self.head.content_id)
            if seal is None:
                raise ProtocolError("the edge never sealed the content")
            verifier.accept_seal(seal)
        if self.scheduler.start_index == 0:
            verifier.check_complete()


class AtlasClient:
    def __init__(
        self,
        edges: list[str],
        session: aiohttp.ClientSession,
        payer: Payer | None,
        *,
        max_price_per_mib: int | None = None,
        window: int = 32,
        per_provider: int = 2,
        accounts: dict[str, Account] | None = None,
        trust: TrustPolicy | None = None,
        target_rate: int | None = None,
        finder: Callable[[ManifestHead], Coroutine[Any, Any, list[str]]] | None = None,
    ) -> None:
        if not edges:
            raise ValueError("an Atlas client needs at least one edge")
        self.edges = [e.rstrip("/") for e in edges]
        self._session = session
        self._chunks = ChunkClient(
            session, payer, max_price_per_mib=max_price_per_mib, accounts=accounts
        )
        self._window = window
        self._per_provider = per_provider
        self._trust = trust or TrustPolicy()
        """Limits on providers other than ``edges``, for each download (a fresh allowance)."""
        self._ceiling, self._target_rate = max_price_per_mib, target_rate
        """What each download bids at most per MiB, and the rate it buys slots up to."""
        self._free_only = None if payer is not None else "there is no wallet to pay with"
        self._finder = finder
        """More providers of a head's content beside the trackers' (the DHT's:
        :meth:`requester.discovery.Discovery.providers_for`)."""
        self.downloads: deque[Download] = deque(maxlen=8)
        """The latest downloads this client set up (the proxy reports their providers)."""

    def leave_credit(self) -> None:
        """Hand the credit left with providers back to the wallet, for the next process that
        pays them (:meth:`requester.chunk_client.ChunkClient.leave_credit`)."""
        self._chunks.leave_credit()

    async def open(
        self, url: str, headers: Mapping[str, str] | None = None, *, start_index: int = 0,
        file: str | None = None,
    ) -> Download:  # fmt: skip
        """Ask an edge for ``url`` and prepare the download (no chunk fetched yet).

        ``url`` may be a magnet link or an infohash; ``file`` then names the file in
        the torrent (without it, edges answer with the torrent's file list: a torrent
        of one file needs no name, more raise :class:`TorrentListing`).
        """
        origin, info = await self._fetch(url, dict(headers or {}), file)
        if "files" in info and "head" not in info:
            files = info["files"]
            only = files[0] if isinstance(files, list) and len(files) == 1 else None
            if file is not None or not isinstance(only, dict) or "path" not in only:
                raise TorrentListing(files)
            origin, info = await self._fetch(url, dict(headers or {}), str(only["path"]))
            if "head" not in info:
                raise TorrentListing(files)
        head = verified_head(b64url_decode(info["head"], MAX_HEAD_BYTES, "head"))
        if head.content_id.hex() != info.get("content_id"):
            raise ProtocolError("edge returned a head that does not match its content id")
        verifier = ContentVerifier(head)
        if info.get("seal"):
            verifier.accept_seal(b64url_decode(info["seal"], SEAL_SIZE, "seal"))
        return self._download(head, verifier, origin, start_index)

    def reopen(self, head: ManifestHead, seal: Seal, origin: str) -> Download:
        """A download of content opened before through ``origin`` (its head and seal were
        verified then), without asking an edge again: every chunk is still checked against
        the head. The proxy reuses a fresh small object's head so (proxy/fresh_heads.py)."""
        return self._download(head, ContentVerifier(head, seal=seal), origin, 0)

    async def single_chunk(self, download: Download) -> bytes:
        """The body of a sealed one-chunk ``download`` without the scheduler's workers; the
        proxy answers page assets so (requester/single_chunk.py)."""
        return await single_chunk(download, self._chunks)

    async def resume(self, head_bytes: bytes, *, start_index: int) -> Download:
        """Continue a download of known content from chunk ``start_index`` (nothing re-paid)."""
        head = ManifestHead.decode(head_bytes)
        return self._download(head, ContentVerifier(head), self.edges[0], start_index)

    def _download(
        self, head: ManifestHead, verifier: ContentVerifier, origin: str, start_index: int
    ) -> Download:
        """The origin edge first, then the other edges; tracker-listed providers join while
        the chunks flow, unless the known edges can already fetch all of it at once (a page
        asset is one chunk): the look-ups cost a request and signature checks per edge."""
        providers = [origin] + [e for e in self.edges if e != origin]
        scheduler = ChunkScheduler(
            verifier, providers, self._chunks, window=self._window,
            per_provider=self._per_provider, start_index=start_index,
            trust=ProviderTrust(self.edges, self._trust),
            market=Bidding(self._ceiling, self._target_rate, self._free_only),
        )  # fmt: skip
        download = Download(head, origin, scheduler, self._session)
        self.downloads.append(download)
        count = expected_chunks(verifier)
        if count is None or count > self._per_provider * len(providers):
            scheduler.discovering = True
            download.discovery = partial(self._discover, scheduler, head)
        return download

    async def _discover(self, scheduler: ChunkScheduler, head: ManifestHead) -> None:
        """Ask every edge's tracker, and the finder; each provider found joins as its answer
        comes."""
        asked = [tracked(self._session, e, head.content_id) for e in self.edges]
        asked += [self._found(head)] if self._finder is not None else []
        try:
            for answer in asyncio.as_completed(asked):
                try:
                    found = await answer
                except (aiohttp.ClientError, TimeoutError, ValueError, SdkError):
                    continue
                for listed in found:
                    bidding = scheduler.market
                    if listed.market and bidding and listed.url not in bidding.markets:
                        bidding.learn(listed.url, listed.market)  # its record's terms, signed
                    scheduler.add_provider(listed.url)
        finally:
            scheduler.discovery_done()

    async def _found(self, head: ManifestHead) -> list[Listed]:
        """The finder's providers (the DHT's: addresses, no terms)."""
        assert self._finder is not None
        return [Listed(url, None) for url in await self._finder(head)]

    async def stream(self, url: str) -> AsyncIterator[bytes]:
        download = await self.open(url)
        async for data in download.chunks():
            yield data

    async def _fetch(self, url: str, headers: dict[str, str],
                     file: str | None = None) -> tuple[str, dict[str, Any]]:  # fmt: skip
        reasons, problems = [], []
        ask: dict[str, Any] = {"url": url, "headers": headers}
        if file is not None:
            ask["file"] = file
        for edge in self.edges:
            try:
                async with self._session.post(
                    f"{edge}/v1/fetch", json=ask, timeout=EDGE_TIMEOUT
                ) as resp:
                    body = await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                reasons.append(f"{edge}: {type(exc).__name__} {exc}")
                continue
            if resp.status == 200 and isinstance(body, dict):
                return edge, body
            if 400 <= resp.status < 500 and isinstance(body, dict):
                raise FetchRefused(resp.status, body)
            if isinstance(body, dict):  # a problem: its code and detail, never the dict
                problems.append((edge, body))
                code = str(body.get("type", "")).rsplit("/", 1)[-1]
                reasons.append(f"{edge}: {resp.status} {code}: {str(body.get('detail'))[:200]}")
                continue
            reasons.append(f"{edge}: {resp.status} {str(body)[:200]}")
        raise EdgeUnavailable("no edge could fetch it: " + "; ".join(reasons), problems)


HEADS_KEPT = 128
_verified_heads: dict[bytes, ManifestHead] = {}


def verified_head(data: bytes) -> ManifestHead:
    """``ManifestHead.decode(data)``, remembered for the last HEADS_KEPT heads by their exact
    bytes (the same bytes verify the same way): a cached content's ``/v1/fetch`` answers the
    same signed head every time, and its Ed25519 check was about a tenth of the proxy's CPU
    for a small object."""
    head = _verified_heads.get(data)
    if head is None:
        head = ManifestHead.decode(data)
        if len(_verified_heads) >= HEADS_KEPT:
            del _verified_heads[next(iter(_verified_heads))]
        _verified_heads[data] = head
    return head


def expected_chunks(verifier: ContentVerifier) -> int | None:
    """How many chunks the content has: sealed, or from the size the edge signed in the head
    (an edge that understates it only costs the requester some providers)."""
    if verifier.seal is not None:
        return verifier.seal.chunk_count
    stated = verifier.head.stated_chunks
    return None if stated is None else max(1, stated)


async def _seal_from(session: aiohttp.ClientSession, edge: str, content_id: bytes) -> bytes | None:
    for _ in range(50):
        async with session.get(f"{edge}/v1/content/{content_id.hex()}",
                               timeout=EDGE_TIMEOUT) as resp:  # fmt: skip
            info = await resp.json(content_type=None)
        if isinstance(info, dict) and info.get("seal"):
            return b64url_decode(info["seal"], SEAL_SIZE, "seal")
        await asyncio.sleep(0.1)
    return None
