"""Spending limits hold when one request's chunks are paid concurrently.

The proxy's downloads pay several providers at once, and a payment may wait on a
ledger call (a channel opening) before its voucher exists. The limits must count
payments in flight, not only booked ones. The payer below stands for the channel
manager and only takes time; what is checked is the proxy's own accounting (the
real one is exercised end to end in test_proxy_http.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest

from proxy.spending import Limits, RequestPayer, SpendBook
from requester.channel_manager import NewChannelAllowance, SpendLimitReached
from requester.protocol import CreditSpend, Quote, Voucher

PRICE = 250


class SlowPayer:
    """Pays after a pause, as a channel manager does when it must open a channel first."""

    def __init__(self, fail: bool = False) -> None:
        self.paid = 0
        self.fail = fail

    async def pay(self, quote: Quote, cost: int, now: int,
                  allowance: NewChannelAllowance | None = None) -> Voucher:  # fmt: skip
        await asyncio.sleep(0.01)
        if self.fail:
            raise ConnectionError("ledger unreachable")
        self.paid += cost
        return cast(Voucher, object())

    def credit_spend(self, channel_id: bytes, content_id: bytes, index: int,
                     now: int) -> CreditSpend:  # fmt: skip
        raise NotImplementedError("these tests only pay")


async def pay_concurrently(payer: RequestPayer, times: int) -> list[BaseException | None]:
    async def one() -> BaseException | None:
        try:
            await payer.pay(cast(Quote, None), PRICE, 0)
        except SpendLimitReached as exc:
            return exc
        return None

    return list(await asyncio.gather(*(one() for _ in range(times))))


async def test_per_request_limit_counts_payments_in_flight(tmp_path: Path) -> None:
    book = SpendBook(tmp_path / "spend.sqlite3", Limits(per_request=2 * PRICE, per_day=None))
    slow = SlowPayer()
    outcomes = await pay_concurrently(RequestPayer(slow, book, "example.org"), 6)
    assert sum(o is None for o in outcomes) == 2
    assert slow.paid == 2 * PRICE
    assert book.spent_today() == 2 * PRICE
    book.close()


async def test_daily_limit_counts_other_requests_in_flight(tmp_path: Path) -> None:
    book = SpendBook(tmp_path / "spend.sqlite3", Limits(per_request=None, per_day=3 * PRICE))
    slow = SlowPayer()
    payers = [RequestPayer(slow, book, f"site{i}.example") for i in range(5)]
    outcomes = await asyncio.gather(*(pay_concurrently(p, 1) for p in payers))
    assert sum(o is None for (o,) in outcomes) == 3
    assert slow.paid == book.spent_today() == 3 * PRICE
    book.close()


async def test_a_failed_payment_gives_its_reservation_back(tmp_path: Path) -> None:
    book = SpendBook(tmp_path / "spend.sqlite3", Limits(per_request=PRICE, per_day=PRICE))
    failing = RequestPayer(SlowPayer(fail=True), book, "example.org")
    with pytest.raises(ConnectionError):
        await failing.pay(cast(Quote, None), PRICE, 0)
    assert failing.spent == 0 and book.spent_today() == 0
    retry = RequestPayer(SlowPayer(), book, "example.org")
    await retry.pay(cast(Quote, None), PRICE, 0)  # the limit is whole again
    assert book.by_site() == {"example.org": PRICE}
    book.close()


async def test_the_days_spending_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "spend.sqlite3"
    book = SpendBook(path, Limits(per_request=None, per_day=3 * PRICE))
    for site in ("a.example", "b.example", "a.example"):
        await RequestPayer(SlowPayer(), book, site).pay(cast(Quote, None), PRICE, 0)
    book.close()
    again = SpendBook(path, Limits(per_request=None, per_day=3 * PRICE))
    assert again.by_site() == {"a.example": 2 * PRICE, "b.example": PRICE}
    assert again.spent_today() == 3 * PRICE
    with pytest.raises(SpendLimitReached, match="today's limit"):
        await RequestPayer(SlowPayer(), again, "c.example").pay(cast(Quote, None), PRICE, 0)
    again.close()
