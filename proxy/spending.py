"""Spending limits: per request and per day, with what was spent on each site.

Every payment the proxy makes goes through a :class:`RequestPayer`, which
refuses (with :class:`SpendLimitReached`) before a voucher is signed if the
request's or the day's limit would be passed. Daily totals per site live in
SQLite in the data dir so a restart does not reset the day's spending.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from requester.channel_manager import NewChannelAllowance, SpendLimitReached
from requester.chunk_client import Payer
from requester.chunk_payer import give_credit, take_credit
from requester.protocol import BTT_LOCAL, CreditSpend, Quote, Voucher, format_amount

SCHEMA = """
CREATE TABLE IF NOT EXISTS spend (
    day TEXT NOT NULL, site TEXT NOT NULL, amount TEXT NOT NULL, PRIMARY KEY (day, site));
"""


def today(now: float | None = None) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))


@dataclass(frozen=True)
class Limits:
    per_request: int | None
    per_day: int | None


class SpendBook:
    """The day's spending per site, durable, and the limits it is held to.

    The day's totals are read from SQLite once per day and kept in memory (this process
    is the book's only writer); every payment writes its site's new total."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self.limits = limits
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # Accounting, not money: the vouchers themselves are recorded by the payer store.
        # NORMAL keeps every payment free of an fsync (a crash of the process loses nothing).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._pending = 0
        """Payments checked against the day's limit but not booked yet (their voucher is
        being signed, maybe after a channel opens): concurrent chunk payments count them."""
        self._day = ""
        self._sites: dict[str, int] = {}
        self._total = 0

    def close(self) -> None:
        self._db.close()

    def _today(self) -> str:
        """Today's date, with today's totals loaded."""
        day = today()
        if day != self._day:
            rows = self._db.execute("SELECT site, amount FROM spend WHERE day=?", (day,))
            self._sites = {site: int(amount) for site, amount in rows.fetchall()}
            self._total = sum(self._sites.values())
            self._day = day
        return day

    def spent_today(self) -> int:
        self._today()
        return self._total

    def by_site(self) -> dict[str, int]:
        self._today()
        return dict(sorted(self._sites.items()))

    def reserve(self, cost: int) -> None:
        """Hold ``cost`` against the day's limit until :meth:`add` books it or
        :meth:`release` gives it back; SpendLimitReached if the limit would pass."""
        limit = self.limits.per_day
        if limit is not None:
            spent = self.spent_today() + self._pending
            if spent + cost > limit:
                raise SpendLimitReached(
                    f"today's limit of {format_amount(limit, BTT_LOCAL)} is reached "
                    f"({format_amount(spent, BTT_LOCAL)} spent); "
                    "raise it with `atlas proxy --max-per-day AMOUNT`"
                )
        self._pending += cost

    def release(self, cost: int) -> None:
        self._pending -= cost

    def add(self, site: str, cost: int) -> None:
        """Book a reserved payment to ``site``."""
        self._pending -= cost
        day = self._today()
        total = self._sites.get(site, 0) + cost
        self._db.execute(
            "INSERT INTO spend VALUES (?, ?, ?) ON CONFLICT(day, site) DO UPDATE SET "
            "amount=excluded.amount",
            (day, site, str(total)),
        )
        self._sites[site] = total
        self._total += cost


class RequestPayer:
    """Pays for one request: within its own limit and the day's, then books it to the site."""

    def __init__(self, payer: Payer, book: SpendBook, site: str) -> None:
        self._payer = payer
        self._book = book
        self.site = site
        self.spent = 0

    async def pay(self, quote: Quote, cost: int, now: int,
                  allowance: NewChannelAllowance | None = None) -> Voucher:  # fmt: skip
        """Both limits are checked and the cost held before the first ``await``: the chunks of
        one request are paid concurrently, and each must see what the others committed."""
        limit = self._book.limits.per_request
        if limit is not None and self.spent + cost > limit:
            raise SpendLimitReached(
                f"this request would cost more than its limit of {format_amount(limit, BTT_LOCAL)} "
                f"({format_amount(self.spent, BTT_LOCAL)} spent); "
                "raise it with `atlas proxy --max-per-request AMOUNT`"
            )
        self._book.reserve(cost)
        self.spent += cost
        try:
            voucher = await self._payer.pay(quote, cost, now, allowance)
        except BaseException:
            self.spent -= cost
            self._book.release(cost)
            raise
        self._book.add(self.site, cost)
        return voucher

    def credit_spend(self, channel_id: bytes, content_id: bytes, index: int,
                     now: int) -> CreditSpend:  # fmt: skip
        """Spending credit already paid for: nothing new to check or book."""
        return self._payer.credit_spend(channel_id, content_id, index, now)

    def take_credit(self, channel_id: bytes) -> int:
        """Credit an earlier process of the wallet paid for (booked then, not again)."""
        return take_credit(self._payer, channel_id)

    def leave_credit(self, channel_id: bytes, amount: int) -> None:
        give_credit(self._payer, channel_id, amount)
