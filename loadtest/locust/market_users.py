"""The locustfile of ``python -m loadtest locust --scenario market``: bidders and free
users against one capacity-limited market edge (docs/market.md), each from a loopback
address of its own (the free lane is shared by address), ``IN_FLIGHT`` chunk requests at
a time. A bidder sends ``Atlas-Bid`` with a payment on each request: a credit spend while
what free chunks left with the edge covers a chunk at the clearing price, else a voucher.
The channels are opened before locust starts (:mod:`.market_run`, the JSON file named by
``ATLAS_LT_MARKET``); this file writes bytes by lane and answers by status per user back
to it when locust quits."""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import gevent.pool  # type: ignore[import-untyped]
from locust import HttpUser, constant, events, task
from requests.adapters import HTTPAdapter

from loadtest.locust import atlas_user  # noqa: F401  (its hooks: the per-scenario figures)
from requester.protocol import (
    CREDIT_HEADER,
    CreditSpend,
    PayerChannel,
    PayerKey,
    PaymentDomain,
    SendVoucher,
    parse_amount,
)
from requester.recorded_calls import view_terms

MIB = 1 << 20
CHUNK = 256 << 10
IN_FLIGHT = 4
SETUP: dict[str, Any] = json.loads(Path(os.environ["ATLAS_LT_MARKET"]).read_text("utf-8"))
USERS: list[dict[str, Any]] = []
"""Per user: its source, bid (None: free), bytes by lane and answers by status, counted
for answers that end within the measured window (``SETUP["window"]`` s from the start)."""
STARTED: list[float] = []


class FromAddress(HTTPAdapter):
    """Connections from one loopback address (urllib3's ``source_address``)."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **{**kwargs, "source_address": (self.source, 0)})


class MarketUser(HttpUser):
    abstract = True
    host = SETUP["edge"]
    wait_time = constant(0)
    kind: ClassVar[str] = ""
    slot: ClassVar[itertools.count[int]]

    def on_start(self) -> None:
        n = next(self.slot)
        self.mine: dict[str, Any] = SETUP[self.kind][n]
        self.source, self.bid = str(self.mine["source"]), self.mine.get("bid")
        self.client.mount("http://", FromAddress(self.source))
        self.stats: dict[str, Any] = {"source": self.source, "bid": self.bid,
                                      "lanes": Counter(), "statuses": Counter()}  # fmt: skip
        USERS.append(self.stats)
        STARTED.append(STARTED[0] if STARTED else time.monotonic())
        self.next = itertools.count(n * 7)

    def payment(self, index: int) -> tuple[dict[str, str], int]:
        return {}, 0

    @task
    def download(self) -> None:
        pool = gevent.pool.Pool(IN_FLIGHT)
        try:
            for _ in range(IN_FLIGHT):
                pool.spawn(self.keep_asking)
            pool.join()
        finally:
            pool.kill()

    def keep_asking(self) -> None:
        while True:
            index = next(self.next) % int(SETUP["chunks"])
            headers, price = self.payment(index)
            path, name = f"/v1/chunk/{SETUP['cid']}/{index}", f"{self.kind}: chunk"
            with self.client.get(path, headers=headers, name=name, catch_response=True) as resp:
                self.answered(resp.status_code, resp.headers, len(resp.content or b""), price)
                if resp.status_code == 200:
                    resp.success()
                else:
                    resp.failure(f"HTTP {resp.status_code}: {(resp.content or b'')[:120]!r}")

    def answered(self, status: int, headers: Any, size: int, price: int) -> None:
        since = time.monotonic() - STARTED[0]
        if not SETUP["window"][0] <= since <= SETUP["window"][1]:
            return
        self.stats["statuses"][status] += 1
        if status == 200:
            self.stats["lanes"][headers.get("Atlas-Lane", "?")] += size


class FreeUser(MarketUser):
    """Never pays, never bids: the free lane only, and never a 402."""

    kind = "free"
    fixed_count = len(SETUP["free"])
    slot = itertools.count()


class Bidder(MarketUser):
    """Bids ``bid`` BTT/MiB from its own channel, paying each request ahead."""

    kind = "bidders"
    fixed_count = len(SETUP["bidders"])
    slot = itertools.count()

    def on_start(self) -> None:
        super().on_start()
        mine = self.mine
        self.key = PayerKey(bytes.fromhex(mine["secret"]))
        domain = PaymentDomain(int(mine["chain_id"]), bytes.fromhex(mine["contract"]))
        view = mine["view"]
        self.channel = PayerChannel(view_terms(view, domain, bytes.fromhex(view["channel_id"])),
                                    self.key)  # fmt: skip
        self.clearing = parse_amount(str(self.bid), self.channel.terms.asset)
        self.vouchers = self.charged = self.reserved = 0

    def payment(self, index: int) -> tuple[dict[str, str], int]:
        price = math.ceil(CHUNK * self.clearing / MIB)
        headers = {"Atlas-Bid": str(self.bid)}
        if self.vouchers - self.charged - self.reserved < price:
            action = self.channel.pay(price, int(time.time()))[1]
            assert isinstance(action, SendVoucher)
            headers["Atlas-Voucher"] = action.voucher.to_header()
            self.vouchers += price
        else:
            terms = self.channel.terms
            headers[CREDIT_HEADER] = CreditSpend.create(
                self.key, domain=terms.domain, channel_id=terms.channel_id,
                content_id=bytes.fromhex(SETUP["cid"]), index=index, issued_at=int(time.time()),
                nonce=os.urandom(16),
            ).to_header()  # fmt: skip
        self.reserved += price
        return headers, price

    def answered(self, status: int, headers: Any, size: int, price: int) -> None:
        super().answered(status, headers, size, price)
        self.reserved -= price
        self.clearing = int(headers.get("Atlas-Clearing-Price") or self.clearing)
        self.stats["clearing"] = self.clearing
        if status == 200:
            self.charged += int(headers.get("Atlas-Price") or 0)
        elif status == 402:  # the credit was short: the next payment is a voucher
            self.charged = self.vouchers


def _write(**_: Any) -> None:
    Path(SETUP["out"]).write_text(json.dumps({"users": USERS}, indent=1), "utf-8")


events.quitting.add_listener(_write)  # type: ignore[no-untyped-call]
