"""Redeeming the edge's vouchers on the ledger: a round every ``--settle-interval``, and
one more when the edge stops.

Each round reads, for every channel holding a voucher worth more than what was
redeemed, the ledger's view of it (expiry, redeemed, status: a payer's
``requestClose`` brings the expiry forward, and the books take it), asks the
ledger what a redeem costs, and lets :mod:`cdn_edge.settlement_policy` decide
which to redeem. Redeeming is idempotent on the ledger (cumulative vouchers),
so a crash between redeeming and recording it costs one refused retry, not
money; on TRON the ledger journals the signed transaction before it is sent,
and the next redeem of the same voucher follows that transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from cdn_edge.config import EdgeConfig
from cdn_edge.payments import CHANNEL_LOOKUP_TIMEOUT, PaymentBook
from cdn_edge.settlement_policy import ChannelFacts, Decision, Economics, Why, decide
from requester.failpoints import reached
from requester.ledger_api import Ledger
from requester.ledger_client import LedgerError
from requester.protocol import PayeeChannel

log = logging.getLogger(__name__)
WORTH_SAYING = frozenset({Why.BELOW_FEE, Why.EXPIRED, Why.CLOSED})
"""Skips an operator should hear of: money given up."""


async def settle_once(
    payments: PaymentBook, ledger: Ledger, now: float, config: EdgeConfig, *,
    everything: bool = False,
) -> int:  # fmt: skip
    """One round (``everything``: the one on stop); returns how many channels it redeemed."""
    channels = await payments.outstanding()
    if not channels:
        return 0
    econ = Economics(await _fee_sun(ledger), config.btt_per_trx,
                     Fraction(config.redeem_fee_ratio))  # fmt: skip
    reading = True
    redeemed = 0
    for channel in channels:
        view = None
        if reading:
            view, reading = await _view(ledger, channel)
        if view is not None:
            await payments.align_terms(channel, view)
        decision = decide(_facts(channel, view), int(now), econ, stopping=everything)
        if not decision.redeem:
            _say_skipped(decision, everything)
            continue
        if await _redeem(ledger, channel, decision):
            reached("settle.redeem_answered")
            await payments.mark_redeemed(channel, channel.paid)
            redeemed += 1
    return redeemed


@dataclass
class SettleClock:
    """When the rounds ran and run next (the dashboard and ``/metrics`` show it)."""

    next_at: float | None = None
    last_at: float | None = None
    last_redeemed: int = 0


async def settle_forever(payments: PaymentBook, ledger: Ledger, config: EdgeConfig,
                         clock: SettleClock | None = None) -> None:  # fmt: skip
    clock = clock or SettleClock()
    while True:
        clock.next_at = time.time() + config.settle_interval
        await asyncio.sleep(config.settle_interval)
        try:
            clock.last_redeemed = await settle_once(payments, ledger, time.time(), config)
        except Exception:
            log.exception("settlement round failed")
        clock.last_at = time.time()


async def _redeem(ledger: Ledger, channel: PayeeChannel, decision: Decision) -> bool:
    """Redeem the best voucher; True once the ledger holds it (credited now or before)."""
    assert channel.best is not None
    cid = channel.terms.channel_id.hex()
    try:
        reached("settle.redeem_sent")
        await ledger.redeem(channel.best)
    except LedgerError as exc:
        if exc.code != "already_redeemed":
            log.warning("redeem of %s (%s) failed: %s", cid, decision.why, exc)
            return False
        log.info("channel %s was already redeemed", cid)
        return True
    log.info("redeemed %s on channel %s (%s, fee %s)", decision.value, cid, decision.why,
             decision.fee)  # fmt: skip
    return True


async def _fee_sun(ledger: Ledger) -> int:
    """What a redeem burns, in sun; 0 (the free ledger's schedule) if the ledger cannot say."""
    try:
        return await ledger.redeem_fee()
    except LedgerError as exc:
        log.warning("cannot read the redeem fee, redeeming near expiry only: %s", exc)
        return 0


async def _view(ledger: Ledger, channel: PayeeChannel) -> tuple[Mapping[str, Any] | None, bool]:
    """The ledger's view of ``channel`` and whether to read the next one (not after the
    ledger proved unreachable: each read would wait its timeout, and stopping has 30 s)."""
    try:
        return await ledger.channel(channel.terms.channel_id, CHANNEL_LOOKUP_TIMEOUT), True
    except LedgerError as exc:
        log.warning("cannot read channel %s: %s", channel.terms.channel_id.hex(), exc)
        return None, exc.status not in (502, 503)
    except TimeoutError:
        return None, False


def _facts(channel: PayeeChannel, view: Mapping[str, Any] | None) -> ChannelFacts:
    t = channel.terms
    if view is None:  # the books' terms stand
        return ChannelFacts(t.channel_id, channel.paid, channel.redeemed, t.expires_at,
                            asset_one=t.asset.one)  # fmt: skip
    return ChannelFacts(
        t.channel_id, channel.paid, channel.redeemed, int(view["expires_at"]),
        int(view["redeemed"]), view["status"] == "open", t.asset.one,
    )  # fmt: skip


def _say_skipped(decision: Decision, stopping: bool) -> None:
    """On stop, every skip is a warning; in a round, only money given up is said (info)."""
    if decision.why in WORTH_SAYING or stopping:
        log.log(logging.WARNING if stopping else logging.INFO,
                "not redeeming %s on channel %s: %s (fee %s)", decision.value,
                decision.channel_id.hex(), decision.why, decision.fee)  # fmt: skip
