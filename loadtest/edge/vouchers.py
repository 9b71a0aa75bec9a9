"""Payers, their channels to an edge, and vouchers signed ahead (in a process pool)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from loadtest.harness.children import BenchError
from requester.ledger_client import LedgerClient
from requester.protocol import (
    BTT_LOCAL,
    ChannelTerms,
    PayerChannel,
    PayerKey,
    SendVoucher,
    TronAddress,
)

FAUCET_GRANT = 1000 * BTT_LOCAL.one
DEPOSIT = 900 * BTT_LOCAL.one
CHANNEL_LIFETIME = 3 * 3600


@dataclass
class Payer:
    """One payer and its channel to the edge; ``issued`` is the highest amount signed so far
    (plain data, so a process pool can sign for it)."""

    secret: bytes
    terms: ChannelTerms
    issued: int = 0


def sign_vouchers(payer: Payer, price: int, count: int) -> tuple[list[str], int]:
    """``count`` voucher headers, each one ``price`` above the last; and the new ``issued``.

    A module-level function so a process pool can run it.
    """
    channel = PayerChannel(payer.terms, PayerKey(payer.secret), payer.issued)
    now = int(time.time())
    out = []
    for _ in range(count):
        send = channel.pay(price, now)[1]
        if not isinstance(send, SendVoucher):
            raise BenchError("PayerChannel.pay did not return SendVoucher second")
        out.append(send.voucher.to_header())
    return out, channel.issued


async def open_payer(ledger: LedgerClient, payee: str) -> Payer:
    key = PayerKey.generate()
    await ledger.faucet(key.address, FAUCET_GRANT)
    expires = int(time.time()) + CHANNEL_LIFETIME
    view = (await ledger.open_channel(key, TronAddress.parse(payee), DEPOSIT, expires))["channel"]
    channel_id = bytes.fromhex(view["channel_id"])
    terms = ChannelTerms(
        await ledger.domain(), channel_id, key.address, TronAddress.parse(payee), BTT_LOCAL,
        DEPOSIT, expires
    )  # fmt: skip
    return Payer(key.secret, terms)


class Signer:
    """Signs voucher batches, in a process pool when the batch is large."""

    def __init__(self) -> None:
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    async def sign(self, payers: Sequence[Payer], price: int, count: int) -> list[list[str]]:
        if count * len(payers) < 20_000 or len(payers) < 2:
            results = [sign_vouchers(p, price, count) for p in payers]
        else:
            if self._pool is None:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=min(len(payers), os.cpu_count() or 1),
                    mp_context=multiprocessing.get_context("spawn"),
                )
            loop = asyncio.get_running_loop()
            results = await asyncio.gather(
                *(loop.run_in_executor(self._pool, sign_vouchers, p, price, count) for p in payers)
            )
        for payer, (_, issued) in zip(payers, results, strict=True):
            payer.issued = issued
        return [headers for headers, _ in results]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
