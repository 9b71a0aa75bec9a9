"""Every way a voucher can be wrong, sent over HTTP to a paid edge: refused, and nothing credited.

Each refusal must carry the status and code the protocol core gives it, a JSON
problem whose detail says exactly what is wrong, and one count under its reason
in ``/metrics``. Afterwards the channel must be as if the voucher had never
been sent: a right voucher for exactly one chunk's price is accepted, and the
edge's books (``atlas edge earnings``) show that payment and nothing more.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from requester.ledger_client import LedgerClient
from requester.protocol import (
    BTT,
    BTT_LOCAL,
    ChannelTerms,
    PayerChannel,
    PayerKey,
    PaymentDomain,
    Quote,
    b64url_decode,
    b64url_encode,
    format_amount,
)
from tests.edge.edge_client import fetch, get_chunk, metrics, problem
from tests.edge.paying import (
    DEPOSIT,
    channel_earnings,
    earnings,
    edge_info,
    open_channel,
    signed_by,
    voucher,
    voucher_header,
)
from tests.origin_server import pattern
from tests.processes import Running, start_edge

CHUNK = 256 * 1024
REFUSED = 'atlas_edge_vouchers_total{{outcome="{}"}}'
ACCEPTED = REFUSED.format("accepted")


@dataclass(frozen=True)
class Node:
    running: Running
    data_dir: Path

    @property
    def url(self) -> str:
        return self.running.url


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, ledger: Running) -> Iterator[Node]:
    """A paid edge (no free allowance) whose books the tests read."""
    data_dir = tmp_path_factory.mktemp("refusing-edge")
    running = start_edge(data_dir, ledger.url, "--free-mib", "0")
    yield Node(running, data_dir)
    running.stop()


@dataclass(frozen=True)
class Payer:
    key: PayerKey
    channel: PayerChannel
    price: int
    """What one full chunk costs at this edge."""
    stranger: PayerKey

    @property
    def terms(self) -> ChannelTerms:
        return self.channel.terms


def fmt(units: int) -> str:
    return format_amount(units, BTT_LOCAL)


@dataclass(frozen=True)
class Case:
    header: Callable[[Payer], str]
    """The Atlas-Voucher value sent."""
    status: int
    code: str
    detail: Callable[[Payer], str]


CASES = {
    "signed_by_another_key": Case(
        lambda p: signed_by(p.stranger, voucher(p.key, p.terms, 2 * p.price)).to_header(),
        400, "invalid_signature",
        lambda p: f"voucher is signed by {p.stranger.address}, not by its payer {p.key.address}",
    ),
    "another_payer": Case(
        lambda p: voucher(p.stranger, p.terms, 2 * p.price).to_header(),
        400, "wrong_binding", lambda p: "voucher is for another payer",
    ),
    "wrong_payee": Case(
        lambda p: voucher(p.key, p.terms, 2 * p.price, payee=p.stranger.address).to_header(),
        400, "wrong_binding", lambda p: "voucher is for another payee",
    ),
    "wrong_chain": Case(
        lambda p: voucher(p.key, p.terms, 2 * p.price, domain=PaymentDomain(
            p.terms.domain.chain_id + 1, p.terms.domain.contract)).to_header(),
        400, "wrong_binding", lambda p: "voucher is for another chain",
    ),
    "wrong_ledger_contract": Case(
        lambda p: voucher(p.key, p.terms, 2 * p.price, domain=PaymentDomain(
            p.terms.domain.chain_id, b"\x01" * 20)).to_header(),
        400, "wrong_binding", lambda p: "voucher is for another chain",
    ),
    "wrong_asset": Case(
        lambda p: voucher(p.key, p.terms, 2 * p.price, asset=BTT).to_header(),
        400, "wrong_binding", lambda p: "voucher is for another asset",
    ),
    "less_than_the_price": Case(
        lambda p: voucher(p.key, p.terms, p.price - 1).to_header(),
        402, "underpaid", lambda p: f"voucher leaves {fmt(1)} unpaid",
    ),
    "above_the_deposit": Case(
        lambda p: voucher(p.key, p.terms, DEPOSIT + p.price).to_header(),
        402, "deposit_exceeded",
        lambda p: f"voucher for {fmt(DEPOSIT + p.price)} exceeds the deposit of {fmt(DEPOSIT)}; "
        "top up the channel",
    ),
    "zero": Case(
        lambda p: voucher(p.key, p.terms, 0).to_header(),
        409, "stale_voucher", lambda p: "voucher amount 0 BTT is not above the last accepted 0 BTT",
    ),
    "not_base64url": Case(
        lambda p: "!!not base64!!", 400, "malformed_message",
        lambda p: "Atlas-Voucher: not base64url",
    ),
    "garbage": Case(
        lambda p: b64url_encode(secrets.token_bytes(188)), 400, "malformed_message",
        lambda p: "voucher: not an Atlas voucher (bad magic or version)",
    ),
    "truncated": Case(
        lambda p: b64url_encode(voucher(p.key, p.terms, p.price).encode()[:100]),
        400, "malformed_message", lambda p: "voucher must be 188 bytes, got 100",
    ),
    "oversized": Case(
        lambda p: b64url_encode(voucher(p.key, p.terms, p.price).encode() + bytes(600)),
        400, "malformed_message",
        lambda p: "Atlas-Voucher: header value longer than 188 bytes allow",
    ),
}  # fmt: skip


async def _priced_content(session: aiohttp.ClientSession, edge: Node,
                          origin: Running) -> tuple[str, int]:  # fmt: skip
    """A fresh one-chunk content id and the price the edge asks for its chunk."""
    fetched = await fetch(session, edge.url, f"{origin.url}/bytes/{CHUNK}")
    cid = fetched.info["content_id"]
    status, _, headers = await get_chunk(session, edge.url, cid, 0)
    assert status == 402
    return cid, int(headers["Atlas-Price"])


async def _pay_right_afterwards(session: aiohttp.ClientSession, edge: Node, cid: str,
                                payer: Payer) -> None:  # fmt: skip
    """The channel still works from where it was: one chunk's price buys one chunk.

    Had the refused voucher been credited, this voucher would be stale (the refused
    ones are for more) or short (its chunk would already count as served).
    """
    status, body, headers = await get_chunk(
        session, edge.url, cid, 0, {"Atlas-Voucher": voucher_header(payer.channel, payer.price)}
    )
    assert (status, headers.get("Atlas-Paid-By")) == (200, "voucher"), body[:300]
    assert body == pattern(0, CHUNK)
    row = channel_earnings(await earnings(edge.data_dir), payer.terms.channel_id)
    assert row is not None
    assert (int(row["paid"]), int(row["served"])) == (payer.price, payer.price)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_wrong_voucher_is_refused_and_credits_nothing(
    origin: Running, ledger: Running, edge: Node, case: Case
) -> None:
    async with aiohttp.ClientSession() as session:
        cid, price = await _priced_content(session, edge, origin)
        key = PayerKey.generate()
        channel = await open_channel(session, ledger.url, edge.url, key=key)
        payer = Payer(key, channel, price, PayerKey.generate())
        before = await metrics(session, edge.url)
        answer = await get_chunk(session, edge.url, cid, 0, {"Atlas-Voucher": case.header(payer)})
        after = await metrics(session, edge.url)
        assert problem(answer, case.status, case.code) == case.detail(payer)
        if case.status == 402:
            quote = Quote.decode(b64url_decode(answer[2]["Atlas-Quote"], 400, "quote"))
            assert str(quote.payee) == (await edge_info(session, edge.url))["payee"]
            assert int(answer[2]["Atlas-Price"]) == price
        refused = REFUSED.format(case.code)
        assert after.get(refused, 0) - before.get(refused, 0) == 1
        assert after.get(ACCEPTED, 0) == before.get(ACCEPTED, 0)
        await _pay_right_afterwards(session, edge, cid, payer)


async def test_voucher_from_a_channel_the_ledger_never_opened(
    origin: Running, ledger: Running, edge: Node
) -> None:
    async with aiohttp.ClientSession() as session:
        cid, price = await _priced_content(session, edge, origin)
        channel = await open_channel(session, ledger.url, edge.url)
        key = PayerKey.generate()
        unknown = secrets.token_bytes(32)
        forged = voucher(key, channel.terms, price, channel_id=unknown)
        answer = await get_chunk(session, edge.url, cid, 0, {"Atlas-Voucher": forged.to_header()})
    detail = problem(answer, 400, "wrong_binding")
    assert detail == f"channel {unknown.hex()} does not exist on the ledger"
    assert channel_earnings(await earnings(edge.data_dir), unknown) is None


async def test_replayed_or_not_larger_by_the_price_is_refused(
    origin: Running, ledger: Running, edge: Node
) -> None:
    async with aiohttp.ClientSession() as session:
        cid, price = await _priced_content(session, edge, origin)
        key = PayerKey.generate()
        channel = await open_channel(session, ledger.url, edge.url, key=key)
        first = voucher_header(channel, price)
        paid = await get_chunk(session, edge.url, cid, 0, {"Atlas-Voucher": first})
        replay = await get_chunk(session, edge.url, cid, 0, {"Atlas-Voucher": first})
        short = voucher(key, channel.terms, price + price // 2).to_header()
        underpaid = await get_chunk(session, edge.url, cid, 0, {"Atlas-Voucher": short})
        row = channel_earnings(await earnings(edge.data_dir), channel.terms.channel_id)
        right = voucher_header(channel, price)
        again = await get_chunk(session, edge.url, cid, 0, {"Atlas-Voucher": right})
        final = channel_earnings(await earnings(edge.data_dir), channel.terms.channel_id)
    assert paid[0] == 200
    assert problem(replay, 409, "stale_voucher") == (
        f"voucher amount {fmt(price)} is not above the last accepted {fmt(price)}"
    )
    assert (
        problem(underpaid, 402, "underpaid") == f"voucher leaves {fmt(price - price // 2)} unpaid"
    )
    assert row is not None and (int(row["paid"]), int(row["served"])) == (price, price)
    assert again[0] == 200 and again[1] == pattern(0, CHUNK)
    assert final is not None and (int(final["paid"]), int(final["served"])) == (
        2 * price,
        2 * price,
    )


async def test_channel_at_its_expiry_margin_is_refused(
    origin: Running, ledger: Running, edge: Node
) -> None:
    # The ledger only opens channels that expire in the future; the edge refuses any
    # within the settle margin (10 minutes) of expiry, since it could not redeem in time.
    async with aiohttp.ClientSession() as session:
        cid, price = await _priced_content(session, edge, origin)
        key = PayerKey.generate()
        channel = await open_channel(session, ledger.url, edge.url, key=key, expires_in=120)
        right = voucher(key, channel.terms, price).to_header()
        answer = await get_chunk(session, edge.url, cid, 0, {"Atlas-Voucher": right})
    assert (
        problem(answer, 402, "channel_expired") == "channel is expired or about to; open a new one"
    )
    assert "Atlas-Quote" in answer[2]
    row = channel_earnings(await earnings(edge.data_dir), channel.terms.channel_id)
    assert row is not None and (row["paid"], row["served"]) == ("0", "0")


async def test_voucher_above_the_deposit_passes_once_the_channel_is_topped_up(
    origin: Running, ledger: Running, edge: Node
) -> None:
    # The edge re-reads a channel from the ledger when a voucher exceeds the deposit it
    # knows, so a top-up made after the first refusal is honoured without a new channel.
    async with aiohttp.ClientSession() as session:
        cid, price = await _priced_content(session, edge, origin)
        key = PayerKey.generate()
        channel = await open_channel(session, ledger.url, edge.url, key=key)
        big = voucher(key, channel.terms, DEPOSIT + price).to_header()
        refused = await get_chunk(session, edge.url, cid, 0, {"Atlas-Voucher": big})
        client = LedgerClient(ledger.url, session)
        await client.top_up(key, channel.terms.channel_id, price, channel.terms.expires_at)
        accepted = await get_chunk(session, edge.url, cid, 0, {"Atlas-Voucher": big})
    problem(refused, 402, "deposit_exceeded")
    assert accepted[0] == 200 and accepted[1] == pattern(0, CHUNK)
    row = channel_earnings(await earnings(edge.data_dir), channel.terms.channel_id)
    assert row is not None and int(row["paid"]) == DEPOSIT + price
