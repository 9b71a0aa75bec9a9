"""Payers' channels to an edge, and their vouchers signed ahead."""

from __future__ import annotations

import time
from collections.abc import Sequence

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


async def open_payer(ledger: LedgerClient, payee: str) -> PayerChannel:
    """A new funded payer with a channel open to ``payee``."""
    key = PayerKey.generate()
    await ledger.faucet(key.address, FAUCET_GRANT)
    expires = int(time.time()) + CHANNEL_LIFETIME
    view = (await ledger.open_channel(key, TronAddress.parse(payee), DEPOSIT, expires))["channel"]
    channel_id = bytes.fromhex(view["channel_id"])
    terms = ChannelTerms(
        await ledger.domain(), channel_id, key.address, TronAddress.parse(payee), BTT_LOCAL,
        DEPOSIT, expires
    )  # fmt: skip
    return PayerChannel(terms, key, 0)


def sign(channels: Sequence[PayerChannel], price: int, count: int) -> list[list[str]]:
    """``count`` voucher headers per channel, each one ``price`` above the last."""
    now, out = int(time.time()), []
    for channel in channels:
        headers = []
        for _ in range(count):
            send = channel.pay(price, now)[1]
            if not isinstance(send, SendVoucher):
                raise BenchError("PayerChannel.pay did not return SendVoucher second")
            headers.append(send.voucher.to_header())
        out.append(headers)
    return out
