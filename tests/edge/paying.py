"""Paying edges in tests: funded channels, vouchers (right and wrong), what an edge earned.

Vouchers are built with the protocol core, as any client would; the forged
ones change exactly one thing about a right voucher, so each refusal test
says which binding it breaks.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from requester.ledger_client import LedgerClient
from requester.protocol import (
    BTT_LOCAL,
    CREDIT_HEADER,
    Asset,
    ChannelTerms,
    CreditSpend,
    PayerChannel,
    PayerKey,
    PaymentDomain,
    SendVoucher,
    TronAddress,
    Voucher,
)
from tests.processes import ATLAS

DEPOSIT = 10 * BTT_LOCAL.one
FUNDS = 100 * BTT_LOCAL.one
"""What the faucet gives each test payer; the deposit comes out of it."""


async def edge_info(session: aiohttp.ClientSession, edge: str) -> dict[str, Any]:
    async with session.get(f"{edge}/v1/info") as r:
        info: dict[str, Any] = await r.json()
        return info


async def open_channel(
    session: aiohttp.ClientSession, ledger: str, edge: str,
    payee: TronAddress | None = None, *, expires_in: int = 3600, key: PayerKey | None = None,
) -> PayerChannel:  # fmt: skip
    """A payer (``key`` or a new one) given ``FUNDS``, with a ``DEPOSIT`` channel to the
    edge's payee (or ``payee``)."""
    client = LedgerClient(ledger, session)
    key = key or PayerKey.generate()
    await client.faucet(key.address, FUNDS)
    to = payee or TronAddress.parse((await edge_info(session, edge))["payee"])
    expires = int(time.time()) + expires_in
    view = (await client.open_channel(key, to, DEPOSIT, expires))["channel"]
    terms = ChannelTerms(await client.domain(), bytes.fromhex(view["channel_id"]), key.address,
                         to, BTT_LOCAL, DEPOSIT, expires)  # fmt: skip
    return PayerChannel(terms, key)


def voucher_header(channel: PayerChannel, amount: int) -> str:
    """The next voucher on ``channel``: ``amount`` more than the last one issued."""
    action = channel.pay(amount, int(time.time()))[1]
    assert isinstance(action, SendVoucher)
    return action.voucher.to_header()


def credit_header(key: PayerKey, terms: ChannelTerms, content_id: str, index: int,
                  issued_at: int | None = None) -> dict[str, str]:  # fmt: skip
    """An ``Atlas-Credit`` header spending ``terms``' credit on one chunk, signed by ``key``
    (the channel's payer, or anyone else for a refusal test)."""
    spend = CreditSpend.create(
        key, domain=terms.domain, channel_id=terms.channel_id,
        content_id=bytes.fromhex(content_id), index=index,
        issued_at=int(time.time()) if issued_at is None else issued_at, nonce=os.urandom(16),
    )  # fmt: skip
    return {CREDIT_HEADER: spend.to_header()}


def voucher(
    key: PayerKey, terms: ChannelTerms, amount: int, *,
    domain: PaymentDomain | None = None, channel_id: bytes | None = None,
    payee: TronAddress | None = None, asset: Asset | None = None,
) -> Voucher:  # fmt: skip
    """A voucher for ``amount`` in total by ``key``, bound to ``terms`` unless told otherwise."""
    return Voucher.create(
        key,
        domain=domain or terms.domain,
        channel_id=channel_id or terms.channel_id,
        payee=payee or terms.payee,
        asset=asset or terms.asset,
        amount=amount,
    )


def signed_by(key: PayerKey, unsigned: Voucher) -> Voucher:
    """``unsigned`` with its payer field kept but signed by ``key``: a forged signature."""
    return replace(unsigned, signature=key.sign_digest(unsigned.digest()))


async def earnings(data_dir: Path) -> dict[str, Any]:
    """``atlas edge earnings --json`` for an edge's data dir (it may be running)."""
    result = await asyncio.to_thread(
        subprocess.run,
        [ATLAS, "edge", "earnings", "--data-dir", str(data_dir), "--json"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def channel_earnings(report: dict[str, Any], channel_id: bytes) -> dict[str, str] | None:
    """One channel's row of an earnings report, or None if the edge never recorded it."""
    rows = [c for c in report["channels"] if c["channel_id"] == channel_id.hex()]
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def credit_left_by_payer(data_dir: Path, channel_id: bytes) -> int:
    """The credit an edge, as a payer, recorded as left with the channel's payee when it
    stopped (its SDK payer store's ``credits``; 0 if none)."""
    path = data_dir / "payer.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT amount FROM credits WHERE channel_id=?", (channel_id.hex(),)
        ).fetchone()
    return 0 if row is None else int(row[0])


def issued_by_payer(data_dir: Path, channel_id: bytes) -> int:
    """The highest voucher amount an edge signed as a payer (its SDK payer store)."""
    path = data_dir / "payer.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT issued FROM channels WHERE channel_id=?", (channel_id.hex(),)
        ).fetchone()
    assert row is not None, f"no payer channel {channel_id.hex()} in {path}"
    return int(row[0])
