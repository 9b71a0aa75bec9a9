"""An edge replicating content locks up and pays little with fake providers (issue 13, defect 2).

Anyone can announce signed provider records for any content id. Here 40 fake
providers (tests/fake_providers.py: fresh node keys, fresh payees, valid
quotes, never a valid chunk) are announced, 20 for each of two contents, to
the tracker of edge R, listed before the honest edge H that holds the
contents and announces to R. R has no trackers of its own, so every provider
is on probation there. Before the fix R opened a 10 BTT, 24 h channel to each
fake and paid them again for every chunk. Now R opens at most
``replica_unknown_channels`` (2) new channels per content and
``replica_unknown_channels_per_hour`` (3 here) in all, signs at most one chunk's
price to any fake, keeps paying H on the channel it already has, and serves
both contents whole.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from requester.ledger_client import LedgerClient
from requester.protocol import (
    BTT_LOCAL,
    ManifestHead,
    NodeKey,
    ProviderRecord,
    TronAddress,
    b64url_encode,
)
from requester.protocol.quote import chunk_price
from tests.edge.edge_client import fetch, wait_for_seal
from tests.edge.paying import edge_info, issued_by_payer, open_channel
from tests.edge.test_edge_replication import CHUNK, listed, paid_download
from tests.origin_server import pattern
from tests.processes import Running, start_edge, start_edge_env, start_program

FAKES = Path(__file__).parents[1] / "fake_providers.py"
PER_HOUR = 3
PRICE_PER_MIB = 10**15
"""The edges' default price (0.001 BTT per MiB); the fakes ask the same."""
EDGE_FUNDS = 1000 * BTT_LOCAL.one
"""Enough for R to open a 10 BTT channel to every fake, as it did before the fix."""


@dataclass
class Edges:
    r: Running
    """The edge asked for content it does not hold; its limits set through the environment."""
    h: Running
    """The honest edge that fetched the content from the origin."""
    r_dir: Path


def _start(tmp_path: Path, ledger: str, h_tracks_r: bool) -> Iterator[Edges]:
    env = {"ATLAS_REPLICA_UNKNOWN_CHANNELS_PER_HOUR": str(PER_HOUR)}
    started: list[Running] = []
    try:
        if h_tracks_r:  # R has no trackers: H, like every provider, is unknown to R
            started.append(start_edge_env(tmp_path / "r", ledger, env, "--free-mib", "0"))
            started.append(start_edge(tmp_path / "h", ledger, "--free-mib", "0",
                                      "--tracker", started[0].url))  # fmt: skip
        else:  # R's tracker is H: a configured peer
            started.append(start_edge(tmp_path / "h", ledger, "--free-mib", "0"))
            started.insert(0, start_edge_env(tmp_path / "r", ledger, env, "--free-mib", "0",
                                             "--tracker", started[0].url))  # fmt: skip
        yield Edges(started[0], started[1], tmp_path / "r")
    finally:
        for edge in started:
            edge.stop()


@pytest.fixture
def unknown_holder(tmp_path: Path, ledger: Running) -> Iterator[Edges]:
    yield from _start(tmp_path, ledger.url, h_tracks_r=True)


@pytest.fixture
def tracked_holder(tmp_path: Path, ledger: Running) -> Iterator[Edges]:
    yield from _start(tmp_path, ledger.url, h_tracks_r=False)


async def _hold(session: aiohttp.ClientSession, h: str, r: str, url: str) -> ManifestHead:
    """H fetches ``url`` whole and R's tracker lists H for it; its head."""
    head = (await fetch(session, h, url)).head
    await wait_for_seal(session, h, head.content_id.hex())
    await listed(session, r, head.content_id.hex(), h)
    return head


async def _announce(session: aiohttp.ClientSession, tracker: str, cid: str,
                    urls: list[str]) -> None:  # fmt: skip
    """A record per fake (fresh node key), expiring after H's, so the tracker lists it first."""
    expires = int(time.time()) + 3000
    records = [b64url_encode(ProviderRecord.create(NodeKey.generate(), bytes.fromhex(cid), url,
                                                   expires).encode()) for url in urls]  # fmt: skip
    async with session.post(f"{tracker}/v1/announce", json={"records": records}) as resp:
        assert resp.status == 200 and (await resp.json())["accepted"] == len(urls)


async def test_fake_providers_get_few_small_channels_from_a_replicating_edge(
    origin: Running, ledger: Running, unknown_holder: Edges
) -> None:
    r, h, r_dir = unknown_holder.r, unknown_holder.h, unknown_holder.r_dir
    async with aiohttp.ClientSession() as session:
        ledger_client = LedgerClient(ledger.url, session)
        domain = await ledger_client.domain()
        r_payee = TronAddress.parse((await edge_info(session, r.url))["payee"])
        h_payee = (await edge_info(session, h.url))["payee"]
        await ledger_client.faucet(r_payee, EDGE_FUNDS)
        sizes = {"warm": CHUNK, "y1": 4 * CHUNK - 1, "y2": 4 * CHUNK - 2}
        heads = {k: await _hold(session, h.url, r.url, f"{origin.url}/bytes/{n}?t=trust-{k}")
                 for k, n in sizes.items()}  # fmt: skip
        cids = {k: head.content_id.hex() for k, head in heads.items()}

        # R replicates a first content from H (on probation there) for a paying client: R
        # now has a channel with room to H's payee, which costs nothing from either
        # allowance later.
        client = await open_channel(session, ledger.url, r.url)
        await paid_download(session, r.url, heads["warm"], client)

        fakes = start_program([
            sys.executable, str(FAKES), "--count", "40", "--chain-id", str(domain.chain_id),
            "--contract", domain.contract.hex(), "--price-per-mib", str(PRICE_PER_MIB),
        ])  # fmt: skip
        try:
            urls = list(fakes.ready["urls"])  # type: ignore[call-overload]
            await _announce(session, r.url, cids["y1"], urls[:20])
            await _announce(session, r.url, cids["y2"], urls[20:])
            for key in ("y1", "y2"):
                data, _ = await paid_download(session, r.url, heads[key], client)
                assert data == pattern(0, sizes[key]), key
            async with session.get(f"{fakes.url}/stats") as resp:
                stats: dict[str, dict[str, int]] = await resp.json()
        finally:
            fakes.stop()
        opened = [c for c in await ledger_client.channels(r_payee) if c["payer"] == str(r_payee)]

    # The fakes were in play: R asked them (they are listed first) and dropped them.
    assert len([u for u, s in stats.items() if s["requests"]]) >= 20, stats
    # At most one chunk's price went to any fake ...
    one_chunk = chunk_price(0, PRICE_PER_MIB, CHUNK)
    assert all(s["vouchers"] <= 1 for s in stats.values()), stats
    to_fakes = [c for c in opened if c["payee"] != h_payee]
    for channel in to_fakes:
        assert issued_by_payer(r_dir, bytes.fromhex(channel["channel_id"])) <= one_chunk
        assert int(channel["deposit"]) == BTT_LOCAL.one // 10, channel
    # ... in at most PER_HOUR new channels in all (one of them H's), though two contents'
    # allowances of two each would have allowed four to fakes.
    assert len(opened) <= PER_HOUR, opened
    assert len(to_fakes) <= PER_HOUR - 1, to_fakes
    assert [c["payee"] for c in opened].count(h_payee) == 1, opened


async def test_a_replicating_edge_asks_its_trackers_before_the_providers_they_list(
    origin: Running, ledger: Running, tracked_holder: Edges
) -> None:
    """Fakes listed before H never hear from R when H is R's tracker: R asks it first, and
    pays it as before (a channel with the full deposit, no probation)."""
    r, h = tracked_holder.r, tracked_holder.h
    async with aiohttp.ClientSession() as session:
        ledger_client = LedgerClient(ledger.url, session)
        domain = await ledger_client.domain()
        r_payee = TronAddress.parse((await edge_info(session, r.url))["payee"])
        h_payee = (await edge_info(session, h.url))["payee"]
        await ledger_client.faucet(r_payee, EDGE_FUNDS)
        head = await _hold(session, h.url, h.url, f"{origin.url}/bytes/{2 * CHUNK}?t=trust-peer")
        cid = head.content_id.hex()
        fakes = start_program([
            sys.executable, str(FAKES), "--count", "10", "--chain-id", str(domain.chain_id),
            "--contract", domain.contract.hex(), "--price-per-mib", str(PRICE_PER_MIB),
        ])  # fmt: skip
        try:
            urls = list(fakes.ready["urls"])  # type: ignore[call-overload]
            await _announce(session, r.url, cid, urls)
            await _announce(session, h.url, cid, urls)
            client = await open_channel(session, ledger.url, r.url)
            assert (await paid_download(session, r.url, head, client))[0] == pattern(0, 2 * CHUNK)
            async with session.get(f"{fakes.url}/stats") as resp:
                stats: dict[str, dict[str, int]] = await resp.json()
        finally:
            fakes.stop()
        opened = [c for c in await ledger_client.channels(r_payee) if c["payer"] == str(r_payee)]
    assert all(s["requests"] == 0 for s in stats.values()), stats
    assert [(c["payee"], int(c["deposit"])) for c in opened] == [(h_payee, 10 * BTT_LOCAL.one)]
