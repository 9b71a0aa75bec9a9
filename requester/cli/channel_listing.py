"""What ``atlas channel list`` shows: the wallet's channels, and calls still pending.

Before listing, the opens and top-ups a crash left unanswered are settled with
the configured ledger (``requester/recorded_calls.py``): no passphrase is
needed, as the calls were signed when they were recorded. One that could not
be settled (the ledger unreachable, or none configured) is listed as pending,
with the reason.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from requester.payer_store import PayerStore, PendingCall
from requester.protocol import ChannelTerms, OpenChannel, format_amount
from requester.recorded_calls import Settled, settle_pending
from requester.settings import Settings


def settle_recorded(store: PayerStore, settings: Settings) -> list[Settled]:
    """Settle the opens and top-ups a crash left unanswered in ``store`` with the configured
    ledger (on TRON without a key: a transaction journaled in ``home`` is followed, one
    never signed waits for a command that unlocks the wallet)."""
    if settings.ledger is None or not store.pending():
        return []

    async def run() -> list[Settled]:
        async with aiohttp.ClientSession() as session:
            ledger = settings.open_ledger(session)
            try:
                return await settle_pending(store, ledger, int(time.time()))
            finally:
                await ledger.close()

    return asyncio.run(run())


def listed_channels(store: PayerStore, settled: list[Settled]) -> list[dict[str, Any]]:
    """One row per channel in ``store``, then one per open still pending; a row whose
    open or top-up is still pending says so in ``pending``."""
    why = {s.call.op_hash: s.left for s in settled if s.left is not None}
    left = {call.channel_id: call for call in store.pending()}
    credits = store.credits()
    rows = [_row(c.terms, c.issued, c.status, left.get(c.terms.channel_id), why,
                 credits.get(c.terms.channel_id, 0)) for c in store.channels()]  # fmt: skip
    rows += [_row(_asked(call), 0, "pending", call, why, 0)
             for call in left.values() if call.kind == "open"]  # fmt: skip
    return rows


def _row(terms: ChannelTerms, issued: int, status: str, pending: PendingCall | None,
         why: dict[str, str], credit: int) -> dict[str, Any]:  # fmt: skip
    note = None
    if pending is not None:
        what = "open" if pending.kind == "open" else (
            f"top-up of {format_amount(pending.amount, terms.asset)}")  # fmt: skip
        reason = why.get(pending.op_hash, "not settled with the configured ledger")
        note = f"{what} sent to {pending.ledger}, not confirmed: {reason}"
    return {
        "channel_id": terms.channel_id.hex(), "payee": str(terms.payee),
        "deposit": format_amount(terms.deposit, terms.asset), "deposit_units": str(terms.deposit),
        "spent": format_amount(issued, terms.asset), "spent_units": str(issued),
        "credit": format_amount(credit, terms.asset), "credit_units": str(credit),
        "expires_at": terms.expires_at, "status": status, "pending": note,
    }  # fmt: skip


def _asked(call: PendingCall) -> ChannelTerms:
    """The channel a pending open would make, as it was asked for."""
    op = call.call.op
    assert isinstance(op, OpenChannel)
    return ChannelTerms(call.domain, call.channel_id, op.payer, op.payee, op.asset, op.deposit,
                        op.expires_at)  # fmt: skip
