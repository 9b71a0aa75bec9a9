"""A replica edge buys a missing chunk only for a request that paid first (issue 13, defect 2).

A replica edge V pays its providers from its own wallet. Before the fix it
fetched a missing chunk for any request, paid or not, and paid any price: an
attacker whose edge X holds content at a high price (an honest, expensive
edge here, announced to V's tracker) could ask V for that content's chunks
without paying, and V paid X for every one (and for a few chunks ahead of
each one paid for). Now an unpaid or badly paid request gets its refusal (the
402 with V's quote and the chunk's full price) and V signs nothing to anyone;
a paying requester (by voucher or the payer's credit spend, by hand, and
through the SDK in two round trips for the first chunk, then one) gets every
chunk, V buying each once and nothing ahead from a provider it did not
configure; a free client is served within V's free allowance; and V pays a
provider no more than its own price, a payer's money staying credit with V
when no provider is that cheap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

from requester.channel_manager import ChannelManager
from requester.chunk_client import ChunkClient
from requester.ledger_client import LedgerClient
from requester.payer_store import PayerStore
from requester.protocol import (
    BTT_LOCAL,
    CREDIT_HEADER,
    ContentVerifier,
    ManifestHead,
    PayerKey,
    TronAddress,
)
from requester.protocol.quote import chunk_price
from tests.edge.edge_client import fetch, get_chunk, wait_for_seal
from tests.edge.paying import (
    FUNDS,
    credit_header,
    earnings,
    edge_info,
    open_channel,
    voucher,
    voucher_header,
)
from tests.edge.test_edge_replication import CHUNK, listed, paid_download
from tests.origin_server import pattern
from tests.processes import Running, start_edge

HIGH = BTT_LOCAL.one // 100
"""0.01 BTT per MiB: ten times the default price."""
FULL = chunk_price(0, HIGH, CHUNK)


@dataclass
class Pair:
    v: Running
    """The victim: a funded replica edge with no trackers of its own."""
    x: Running
    """The attacker's edge: holds the content at HIGH, announces it to V's tracker."""
    v_dir: Path
    x_dir: Path


def _pair(tmp_path: Path, ledger: str, v_price: str, free_mib: str = "0") -> Iterator[Pair]:
    v = start_edge(tmp_path / "v", ledger, "--free-mib", free_mib, "--price", v_price)
    try:
        x = start_edge(tmp_path / "x", ledger, "--free-mib", "0", "--price", "0.01",
                       "--tracker", v.url)  # fmt: skip
    except BaseException:
        v.stop()
        raise
    yield Pair(v, x, tmp_path / "v", tmp_path / "x")
    x.stop()
    v.stop()


@pytest.fixture
def same_price(tmp_path: Path, ledger: Running) -> Iterator[Pair]:
    yield from _pair(tmp_path, ledger.url, "0.01")


@pytest.fixture
def free_victim(tmp_path: Path, ledger: Running) -> Iterator[Pair]:
    yield from _pair(tmp_path, ledger.url, "0.01", free_mib="1")


@pytest.fixture
def cheaper_victim(tmp_path: Path, ledger: Running) -> Iterator[Pair]:
    yield from _pair(tmp_path, ledger.url, "0.001")


async def _setup(session: aiohttp.ClientSession, ledger: str, origin: str, pair: Pair,
                 size: int, tag: str) -> tuple[ManifestHead, TronAddress]:  # fmt: skip
    """X holds ``size`` bytes, listed on V's tracker; V is funded. The head, V's payee."""
    v_payee = TronAddress.parse((await edge_info(session, pair.v.url))["payee"])
    await LedgerClient(ledger, session).faucet(v_payee, FUNDS)
    head = (await fetch(session, pair.x.url, f"{origin}/bytes/{size}?t={tag}")).head
    await wait_for_seal(session, pair.x.url, head.content_id.hex())
    await listed(session, pair.v.url, head.content_id.hex(), pair.x.url)
    return head, v_payee


async def _v_paid(session: aiohttp.ClientSession, ledger: str, v_payee: TronAddress
                  ) -> list[dict[str, str]]:  # fmt: skip
    """Channels V opened as a payer, on the ledger."""
    channels = await LedgerClient(ledger, session).channels(v_payee)
    return [c for c in channels if c["payer"] == str(v_payee)]


async def test_unpaid_and_forged_requests_make_a_replica_pay_nothing(
    origin: Running, ledger: Running, same_price: Pair, tmp_path: Path
) -> None:
    pair = same_price
    async with aiohttp.ClientSession() as session:
        head, v_payee = await _setup(session, ledger.url, origin.url, pair, 3 * CHUNK, "first")
        cid = head.content_id.hex()
        key = PayerKey.generate()
        client = await open_channel(session, ledger.url, pair.v.url, key=key)
        t = client.terms
        refused = []
        for index in range(3):
            forged = voucher(PayerKey.generate(), t, FULL)  # another key, the client's channel
            for headers in (
                {},
                {"Atlas-Voucher": forged.to_header()},
                {"Atlas-Voucher": voucher_header(client, 1)},  # underpaid
                {"Atlas-Channel": t.channel_id.hex()},
                credit_header(PayerKey.generate(), t, cid, index),  # a stranger's spend
                {CREDIT_HEADER: "AAAA"},
            ):
                refused.append(await get_chunk(session, pair.v.url, cid, index, headers))
        await asyncio.sleep(0.5)  # anything V started in the background would have begun
        assert await _v_paid(session, ledger.url, v_payee) == []
        assert (await earnings(pair.x_dir))["channels"] == []

        # A requester paying for chunk 0 makes V buy chunk 0 and no more: V reads ahead
        # only from its --tracker peers, which X is not. It paid twice the price: the
        # rest stays credit, which the payer's signed spend then pays chunk 1 with.
        paying = {"Atlas-Voucher": voucher_header(client, 2 * FULL)}
        status, _, answer = await get_chunk(session, pair.v.url, cid, 0, paying)
        assert (status, answer["Atlas-Paid-By"]) == (200, "voucher")
        assert int(answer["Atlas-Price"]) == FULL
        await asyncio.sleep(0.5)
        [x_row] = (await earnings(pair.x_dir))["channels"]
        assert int(x_row["served"]) == FULL
        spend = credit_header(key, t, cid, 1)
        status, _, answer = await get_chunk(session, pair.v.url, cid, 1, spend)
        assert (status, answer["Atlas-Paid-By"]) == (200, "credit")
        [x_row] = (await earnings(pair.x_dir))["channels"]
        assert int(x_row["served"]) == 2 * FULL

        # A paying requester gets the content; V pays X for what it bought, once.
        data, client_paid = await paid_download(session, pair.v.url, head, client)
        assert data == pattern(0, 3 * CHUNK)
        [to_x] = await _v_paid(session, ledger.url, v_payee)
        [x_row] = (await earnings(pair.x_dir))["channels"]
        assert x_row["channel_id"] == to_x["channel_id"]
        assert int(x_row["served"]) == client_paid == 3 * FULL

    codes = [(status, h.get("Content-Type", ""), body[:200]) for status, body, h in refused]
    assert all(400 <= s < 500 and "problem+json" in ct for s, ct, _ in codes), codes
    unpaid = refused[::6]
    assert all(s == 402 and int(h["Atlas-Price"]) == FULL and h["Atlas-Quote"]
               for s, _, h in unpaid), unpaid  # fmt: skip


async def test_the_sdk_downloads_from_a_replica_in_one_round_trip_per_chunk(
    origin: Running, ledger: Running, same_price: Pair, tmp_path: Path
) -> None:
    """The first chunk: the 402, then the voucher; every other chunk is paid ahead."""
    pair = same_price
    sent: list[str] = []

    async def count(_: aiohttp.ClientSession, __: SimpleNamespace,
                    params: aiohttp.TraceRequestStartParams) -> None:  # fmt: skip
        if "/v1/chunk/" in str(params.url):
            sent.append(str(params.url))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(count)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        size = 4 * CHUNK - 5
        head, _ = await _setup(session, ledger.url, origin.url, pair, size, "sdk")
        ledger_client = LedgerClient(ledger.url, session)
        key = PayerKey.generate()
        await ledger_client.faucet(key.address, FUNDS)
        store = PayerStore(tmp_path / "payer.sqlite3")
        try:
            chunks = ChunkClient(session, ChannelManager(key, store, ledger_client))
            verifier = ContentVerifier(head)
            data = b""
            for index in range(4):
                data += (await chunks.get(pair.v.url, verifier, index)).data
        finally:
            store.close()
    assert data == pattern(0, size)
    assert len(sent) == 5, sent


async def test_a_replica_pays_a_provider_no_more_than_its_own_price(
    origin: Running, ledger: Running, cheaper_victim: Pair
) -> None:
    """X asks ten times V's price: V buys nothing from it, and the paying client's money
    stays credit with V."""
    pair = cheaper_victim
    async with aiohttp.ClientSession() as session:
        head, v_payee = await _setup(session, ledger.url, origin.url, pair, CHUNK, "dear")
        cid = head.content_id.hex()
        client = await open_channel(session, ledger.url, pair.v.url)
        status, _, quoted = await get_chunk(session, pair.v.url, cid, 0)
        assert status == 402
        price = int(quoted["Atlas-Price"])
        assert price == chunk_price(0, HIGH // 10, CHUNK)
        paying = {"Atlas-Voucher": voucher_header(client, price)}
        status, body, _ = await get_chunk(session, pair.v.url, cid, 0, paying)
        assert status == 503 and b"above the limit" in body, body[:400]
        assert await _v_paid(session, ledger.url, v_payee) == []
        assert (await earnings(pair.x_dir))["channels"] == []
        [row] = (await earnings(pair.v_dir))["channels"]
        assert (int(row["paid"]), int(row["served"])) == (price, 0)


async def test_a_replica_buys_a_chunk_its_free_allowance_covers(
    origin: Running, ledger: Running, free_victim: Pair
) -> None:
    """V gives each client 1 MiB free: an unpaid request within it is served (V buying the
    chunk), one past it gets the 402 and V buys nothing more."""
    pair = free_victim
    async with aiohttp.ClientSession() as session:
        head, _ = await _setup(session, ledger.url, origin.url, pair, 6 * CHUNK, "free")
        cid = head.content_id.hex()
        answers = [await get_chunk(session, pair.v.url, cid, index) for index in range(5)]
        await asyncio.sleep(0.5)
        [x_row] = (await earnings(pair.x_dir))["channels"]
    assert [(s, h.get("Atlas-Paid-By")) for s, _, h in answers] == [(200, "free")] * 4 + [
        (402, None)
    ]
    assert answers[0][1] == pattern(0, CHUNK)
    assert int(x_row["served"]) == 4 * FULL
