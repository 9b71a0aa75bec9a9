"""Redeeming the edge's vouchers on the ledger, before channels expire.

Periodically, every channel whose best voucher is worth more than what was
redeemed and that is near its expiry is redeemed; on shutdown, all of them
are. Redeeming is idempotent on the ledger (cumulative vouchers), so a crash
between redeeming and recording it costs one refused retry, not money.
"""

from __future__ import annotations

import asyncio
import logging
import time

from cdn_edge.payments import PaymentBook
from requester.failpoints import reached
from requester.ledger_api import Ledger
from requester.ledger_client import LedgerError
from requester.protocol import Redeem

log = logging.getLogger(__name__)


async def settle_once(
    payments: PaymentBook, ledger: Ledger, now: float, *, everything: bool = False
) -> int:
    """Redeem what is due (or ``everything`` outstanding); returns how many channels."""
    redeemed = 0
    for channel in await payments.outstanding():
        due = everything or any(isinstance(a, Redeem) for a in channel.redeem_due(int(now)))
        if not due or channel.best is None:
            continue
        try:
            reached("settle.redeem_sent")
            await ledger.redeem(channel.best)
        except LedgerError as exc:
            if exc.code != "already_redeemed":
                log.warning("redeem of %s failed: %s", channel.terms.channel_id.hex(), exc)
                continue
            log.info("channel %s was already redeemed", channel.terms.channel_id.hex())
        reached("settle.redeem_answered")
        await payments.mark_redeemed(channel, channel.paid)
        redeemed += 1
    return redeemed


async def settle_forever(payments: PaymentBook, ledger: Ledger, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await settle_once(payments, ledger, time.time())
        except Exception:
            log.exception("settlement round failed")
