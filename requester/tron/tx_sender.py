"""Carrying a journaled intent onto the chain: persist, then broadcast, then poll.

:meth:`TxSender.carry` applies one intent of the :class:`TxJournal` exactly once:

1. ``new`` or ``failed``: build the transaction with tronpy's builder (its txID
   from the node's ``getsignweight``), ``fee_limit`` explicit, expiration set
   from the NODE's head block time (never the local clock: a test node's clock
   jumps by hours), sign it, commit it to the journal (``tron.signed_persisted``);
2. ``signed``: broadcast those same bytes (a ``DUP_TRANSACTION_ERROR`` means the
   node has them already; ``tron.broadcast_sent``), then poll the receipt until
   it comes (``tron.receipt_seen``) or the head block passes the expiration;
   only then, with no receipt, may a new transaction be built (step 1);
3. a SUCCESS receipt confirms the intent; a FAILED one (revert, out of energy)
   marks it failed and raises the refusal it carries.

A crash anywhere leaves the journal saying what to do next: nothing sent, or
the same bytes to broadcast again, or the answer already there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from tronpy import AsyncTron
from tronpy.async_tron import AsyncTransaction, AsyncTransactionBuilder
from tronpy.exceptions import (
    ApiError,
    BadSignature,
    TaposError,
    TransactionError,
    TransactionNotFound,
    UnknownError,
    ValidationError,
)
from tronpy.keys import PrivateKey

from requester.failpoints import reached
from requester.ledger_client import LedgerError
from requester.protocol import PayerKey
from requester.tron.tx_journal import Entry, TxJournal

EXPIRY_WINDOW_MS = 60_000
"""A transaction expires this long after the node's head block (tronpy's default)."""
MAX_BUILDS = 4
"""Transactions built for one intent in one call before giving up (each expired unseen)."""
POLL_FIRST, POLL_MAX = 0.05, 3.0
"""Receipt polling: the first wait and the longest (TRON makes a block every 3 s)."""
POLL_GRACE_S = 30.0
"""Wall-clock seconds past the expiry window a call keeps polling a node whose head
block does not move; the transaction then stays journaled for the next attempt."""

Refusal = Callable[[dict[str, Any]], LedgerError]
"""The refusal a FAILED receipt carries."""
Make = Callable[[], Awaitable[AsyncTransactionBuilder | None]]
"""Checks an intent can apply and returns the builder of its transaction; None: it is
found applied already (an open whose channel exists with the same terms)."""


class TxSender:
    def __init__(self, client: AsyncTron, journal: TxJournal, fee_limit: int) -> None:
        self._client, self._journal, self._fee_limit = client, journal, fee_limit

    async def head_ms(self) -> int:
        """The node's clock: its head block's timestamp, in ms."""
        block = await self._client.get_latest_block()
        return int(block["block_header"]["raw_data"]["timestamp"])

    async def carry(
        self, intent: str, key: PayerKey | None, make: Make, doing: str, refusal: Refusal
    ) -> dict[str, Any] | None:
        """Apply ``intent`` (journaled already) exactly once; its SUCCESS receipt (None: it
        was found applied by other means), or the refusal of a FAILED one raised."""
        for _ in range(MAX_BUILDS):
            entry = self._journal.get(intent)
            assert entry is not None, intent
            if entry.state == "confirmed":
                return entry.receipt
            if entry.state in ("new", "failed"):
                if key is None:
                    raise LedgerError(503, "no_signer", f"{doing}: a transaction must be "
                                      "built and signed, and no key was given")  # fmt: skip
                builder = await make()
                if builder is None:
                    self._journal.confirmed(intent, None)
                    return None
                await self._sign_and_persist(intent, key, builder)
                reached("tron.signed_persisted")
                entry = self._journal.get(intent)
                assert entry is not None
            receipt = await self._follow(entry, doing)
            if receipt is None:
                self._journal.expired(intent)
                continue
            if succeeded(receipt):
                self._journal.confirmed(intent, receipt)
                reached("tron.receipt_seen")
                return receipt
            self._journal.failed(intent, receipt)
            reached("tron.receipt_seen")
            raise refusal(receipt)
        why = f"{doing}: {MAX_BUILDS} transactions expired before being included"
        raise LedgerError(503, "tron_tx_expired", why)

    async def _sign_and_persist(self, intent: str, key: PayerKey,
                                builder: AsyncTransactionBuilder) -> None:  # fmt: skip
        head = await self.head_ms()
        local = int(time.time() * 1000)
        builder.fee_limit(self._fee_limit).expiration(head + EXPIRY_WINDOW_MS - local)
        txn = await builder.build()
        try:
            txn.sign(PrivateKey(key.secret))
        except ValueError as exc:  # "expired": the node's clock is far behind this one
            raise LedgerError(503, "tron_clock", f"cannot sign: {exc}") from exc
        data = txn.to_json()
        self._journal.signed(intent, data, txn.txid, int(data["raw_data"]["expiration"]))

    async def _follow(self, entry: Entry, doing: str) -> dict[str, Any] | None:
        """Broadcast ``entry``'s transaction (again) and wait for its receipt; None if it
        expired without being included."""
        assert entry.tx is not None and entry.txid is not None and entry.expiration is not None
        receipt = await self.receipt(entry.txid)
        if receipt is not None:
            return receipt
        if await self.head_ms() > entry.expiration:
            return await self.receipt(entry.txid)
        try:
            await self._client.broadcast(AsyncTransaction(entry.tx, client=self._client))
        except UnknownError as exc:
            if "DUP_TRANSACTION" not in str(exc.args[1:]) + str(exc):
                raise self._refused(entry, exc, doing) from exc
        except (TransactionError, TaposError):  # expired, or its reference block is gone
            return await self.receipt(entry.txid)
        except (BadSignature, ValidationError, ApiError) as exc:
            raise self._refused(entry, exc, doing) from exc
        except httpx.HTTPError as exc:
            raise unreachable(exc) from exc
        reached("tron.broadcast_sent")
        return await self._poll(entry)

    async def _poll(self, entry: Entry) -> dict[str, Any] | None:
        assert entry.txid is not None and entry.expiration is not None
        give_up = time.monotonic() + EXPIRY_WINDOW_MS / 1000 + POLL_GRACE_S
        wait = POLL_FIRST
        while True:
            receipt = await self.receipt(entry.txid)
            if receipt is not None:
                return receipt
            if await self.head_ms() > entry.expiration:
                return await self.receipt(entry.txid)
            if time.monotonic() > give_up:
                why = f"transaction {entry.txid} is not in a block yet; it stays journaled"
                raise LedgerError(503, "tron_tx_pending", why)
            await asyncio.sleep(wait)
            wait = min(wait * 2, POLL_MAX)

    async def receipt(self, txid: str) -> dict[str, Any] | None:
        try:
            return dict(await self._client.get_transaction_info(txid))
        except TransactionNotFound:
            return None
        except httpx.HTTPError as exc:
            raise unreachable(exc) from exc

    def _refused(self, entry: Entry, exc: Exception, doing: str) -> LedgerError:
        """The node refused the transaction outright: it is not in, and never will be."""
        message = " ".join(str(a) for a in exc.args) or type(exc).__name__
        self._journal.failed(entry.intent, {"refused": message})
        status, code = (402, "insufficient_trx") if "balance" in message.lower() else (
            400, "tron_refused")  # fmt: skip
        return LedgerError(status, code, f"{doing}: the node refused the transaction: {message}")


def succeeded(receipt: dict[str, Any]) -> bool:
    """A receipt of a transaction that applied (java-tron omits ``result`` on success)."""
    inner = receipt.get("receipt") or {}
    return bool(receipt.get("result", "SUCCESS") == "SUCCESS" == inner.get("result", "SUCCESS"))


def unreachable(exc: Exception) -> LedgerError:
    why = str(exc) or type(exc).__name__
    return LedgerError(503, "ledger_unreachable", f"TRON node: {why}")
