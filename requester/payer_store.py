"""The payer's channels on disk: the highest voucher amount ever signed, per channel.

Written *before* a voucher is sent, so after a crash the payer resumes from
the highest amount it ever signed and never signs a lower or equal one again.
Likewise each channel open and top-up is recorded, signed, before it is sent
(``pending_calls``) and settled into ``channels`` when its answer comes, so a
kill between the ledger applying a call and the payer hearing of it leaves a
record to settle (``requester/channel_recovery.py``), not a forgotten deposit.
SQLite calls are quick and local; they run inline (one small write per payment).

``credits`` holds what a process paid ahead to a payee and was not charged (a
last chunk shorter than the full size it was paid at, a run cut short) when it
stopped using the channel: the next process to pay that payee takes it and
spends it rather than paying again. Taken rows are deleted in the same
transaction, so two processes of one wallet never both count the same credit.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from requester.errors import SdkError
from requester.failpoints import reached
from requester.protocol import (
    Asset,
    ChannelTerms,
    OpenChannel,
    PaymentDomain,
    SignedOp,
    TopUpChannel,
    TronAddress,
    asset_by_code,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    channel_id TEXT PRIMARY KEY, ledger TEXT NOT NULL, chain_id INTEGER NOT NULL,
    contract TEXT NOT NULL, payer TEXT NOT NULL, payee TEXT NOT NULL, asset INTEGER NOT NULL,
    deposit TEXT NOT NULL, expires_at INTEGER NOT NULL, issued TEXT NOT NULL,
    status TEXT NOT NULL, opened_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS channels_payee ON channels (payee, status);
CREATE TABLE IF NOT EXISTS pending_calls (
    op_hash TEXT PRIMARY KEY, ledger TEXT NOT NULL, chain_id INTEGER NOT NULL,
    contract TEXT NOT NULL, channel_id TEXT NOT NULL, payee TEXT NOT NULL, call TEXT NOT NULL,
    recorded_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS spend_hours (hour TEXT PRIMARY KEY, amount TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS credits (
    channel_id TEXT PRIMARY KEY, amount TEXT NOT NULL, left_at INTEGER NOT NULL);
"""
HOURS_KEPT = 24 * 31
"""Hours of signed spending kept for ``atlas status`` and the proxy's page (a month)."""


class IssuedElsewhere(SdkError, ValueError):
    """Another process sharing this store signed a voucher at least as large meanwhile (a
    ValueError too: callers around a payment catch that)."""

    status = 409
    code = "issued_elsewhere"


@dataclass(frozen=True)
class StoredChannel:
    ledger: str
    terms: ChannelTerms
    issued: int
    status: str
    opened_at: int


@dataclass(frozen=True)
class PendingCall:
    """An open or top-up signed and recorded, whose answer this store has not seen."""

    op_hash: str
    ledger: str
    domain: PaymentDomain
    channel_id: bytes
    """The channel opened (derived from the signed open) or topped up."""
    payee: TronAddress
    call: SignedOp
    recorded_at: int

    @property
    def kind(self) -> str:
        return self.call.op.TYPE

    @property
    def amount(self) -> int:
        """The deposit of an open, or what a top-up adds."""
        op = self.call.op
        if isinstance(op, OpenChannel):
            return op.deposit
        return op.amount if isinstance(op, TopUpChannel) else 0


class PayerStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a crash of this process (kill -9), which is what
        # "record before sending" guards against; a power cut may lose the last records,
        # after which a re-signed amount is merely refused as stale by the payee.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, ledger: str, terms: ChannelTerms, now: int, *, settles: str | None = None,
            status: str = "open") -> None:  # fmt: skip
        """Record an opened channel (kept as it is if already recorded), and drop the pending
        call ``settles`` (the open it answers) in the same transaction."""
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO channels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '0', ?, ?)",
                (terms.channel_id.hex(), ledger, terms.domain.chain_id,
                 terms.domain.contract.hex(), str(terms.payer), str(terms.payee),
                 terms.asset.code, str(terms.deposit), terms.expires_at, status, now),
            )  # fmt: skip
            self._drop(settles)

    def add_pending(self, ledger: str, domain: PaymentDomain, call: SignedOp,
                    payee: TronAddress, now: int) -> PendingCall:  # fmt: skip
        """Record an open or top-up before it is sent."""
        op = call.op
        cid = op.channel_id(domain) if isinstance(op, OpenChannel) else op.channel_id
        pending = PendingCall(call.op_hash(domain).hex(), ledger, domain, cid, payee, call, now)
        self._db.execute(
            "INSERT INTO pending_calls VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (pending.op_hash, ledger, domain.chain_id, domain.contract.hex(), cid.hex(),
             str(payee), json.dumps(call.to_json()), now),
        )  # fmt: skip
        return pending

    def pending(self) -> list[PendingCall]:
        """Calls recorded and not settled, oldest first."""
        rows = self._db.execute("SELECT * FROM pending_calls ORDER BY recorded_at").fetchall()
        return [_pending(r) for r in rows]

    def drop_pending(self, op_hash: str) -> None:
        """Forget a call the ledger refused: it changed nothing and never will."""
        self._drop(op_hash)

    def _drop(self, op_hash: str | None) -> None:
        if op_hash is not None:
            self._db.execute("DELETE FROM pending_calls WHERE op_hash=?", (op_hash,))

    def record_issued(self, channel_id: bytes, amount: int) -> None:
        """Durably raise the issued amount; refuses to lower it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute(
                "SELECT issued FROM channels WHERE channel_id=?", (channel_id.hex(),)
            ).fetchone()
            if row is None:
                raise ValueError(f"no channel {channel_id.hex()} in this store")
            if int(row["issued"]) >= amount:
                raise IssuedElsewhere(
                    f"voucher amount {amount} is not above what was already issued "
                    f"({row['issued']}, by another process of this wallet)"
                )
            self._db.execute(
                "UPDATE channels SET issued=? WHERE channel_id=?", (str(amount), channel_id.hex())
            )
            self._add_spend(amount - int(row["issued"]))
            self._db.execute("COMMIT")
            reached("payer.voucher_persisted")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _add_spend(self, amount: int) -> None:
        """Count what a voucher signed on top of the last into this UTC hour's spending, whoever
        signed it (atlas fetch, the proxy): the wallet's own history of what it spent."""
        hour = time.strftime("%Y-%m-%dT%H", time.gmtime())
        row = self._db.execute("SELECT amount FROM spend_hours WHERE hour=?", (hour,)).fetchone()
        total = amount + (int(row["amount"]) if row is not None else 0)
        self._db.execute("INSERT OR REPLACE INTO spend_hours VALUES (?, ?)", (hour, str(total)))
        if row is None:  # a new hour: forget the oldest
            oldest = time.strftime("%Y-%m-%dT%H", time.gmtime(time.time() - HOURS_KEPT * 3600))
            self._db.execute("DELETE FROM spend_hours WHERE hour < ?", (oldest,))

    def spend_by_hour(self, day: str) -> dict[int, int]:
        """What vouchers signed in each UTC hour of ``day`` (``YYYY-MM-DD``), base units."""
        rows = self._db.execute(
            "SELECT hour, amount FROM spend_hours WHERE hour LIKE ?", (f"{day}T%",)
        ).fetchall()
        return {int(r["hour"][-2:]): int(r["amount"]) for r in rows}

    def take_credit(self, channel_id: bytes) -> int:
        """The credit a process left with the payee of ``channel_id``, now the caller's to
        spend (0 if none): removed from the store, so no other process counts it too."""
        key = channel_id.hex()
        if self._db.execute("SELECT 1 FROM credits WHERE channel_id=?", (key,)).fetchone() is None:
            return 0  # the usual case costs no write
        with self._transaction():
            row = self._db.execute("SELECT amount FROM credits WHERE channel_id=?",
                                   (key,)).fetchone()  # fmt: skip
            self._db.execute("DELETE FROM credits WHERE channel_id=?", (key,))
        return 0 if row is None else int(row["amount"])

    def leave_credit(self, channel_id: bytes, amount: int, now: int) -> None:
        """Record ``amount`` more of credit left with the payee of ``channel_id`` (paid and
        not charged there) for whichever process pays that payee next."""
        if amount <= 0:
            return
        key = channel_id.hex()
        with self._transaction():
            row = self._db.execute("SELECT amount FROM credits WHERE channel_id=?",
                                   (key,)).fetchone()  # fmt: skip
            total = amount + (0 if row is None else int(row["amount"]))
            self._db.execute("INSERT OR REPLACE INTO credits VALUES (?, ?, ?)",
                             (key, str(total), now))  # fmt: skip

    def credits(self) -> dict[bytes, int]:
        """Credit left with payees and held by no running process, per channel."""
        rows = self._db.execute("SELECT channel_id, amount FROM credits").fetchall()
        return {bytes.fromhex(r["channel_id"]): int(r["amount"]) for r in rows}

    def update_terms(self, terms: ChannelTerms, *, settles: str | None = None) -> None:
        """Raise a channel's deposit and expiry to ``terms`` (never lowers them), and drop
        the pending call ``settles`` (the top-up it answers) in the same transaction."""
        with self._transaction():
            row = self._db.execute(
                "SELECT deposit, expires_at FROM channels WHERE channel_id=?",
                (terms.channel_id.hex(),),
            ).fetchone()
            if row is not None:
                self._db.execute(
                    "UPDATE channels SET deposit=?, expires_at=? WHERE channel_id=?",
                    (str(max(terms.deposit, int(row["deposit"]))),
                     max(terms.expires_at, row["expires_at"]), terms.channel_id.hex()),
                )  # fmt: skip
            self._drop(settles)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def set_status(self, channel_id: bytes, status: str) -> None:
        self._db.execute(
            "UPDATE channels SET status=? WHERE channel_id=?", (status, channel_id.hex())
        )

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: it changes whenever another connection to the
        file (another process of this wallet, or another store object) commits, never for
        this one's own writes. A reader that saw a value may skip re-reading while it stays."""
        row = self._db.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def channels(self, *, payee: TronAddress | None = None, status: str | None = None
                 ) -> list[StoredChannel]:  # fmt: skip
        who = None if payee is None else str(payee)
        rows = self._db.execute(
            "SELECT * FROM channels WHERE (? IS NULL OR payee=?) AND (? IS NULL OR status=?) "
            "ORDER BY opened_at",
            (who, who, status, status),
        ).fetchall()
        return [_stored(r) for r in rows]


def _stored(row: sqlite3.Row) -> StoredChannel:
    asset: Asset = asset_by_code(row["asset"])
    terms = ChannelTerms(
        PaymentDomain(row["chain_id"], bytes.fromhex(row["contract"])),
        bytes.fromhex(row["channel_id"]), TronAddress.parse(row["payer"]),
        TronAddress.parse(row["payee"]), asset, int(row["deposit"]), row["expires_at"],
    )  # fmt: skip
    return StoredChannel(row["ledger"], terms, int(row["issued"]), row["status"], row["opened_at"])


def _pending(row: sqlite3.Row) -> PendingCall:
    return PendingCall(
        row["op_hash"], row["ledger"],
        PaymentDomain(row["chain_id"], bytes.fromhex(row["contract"])),
        bytes.fromhex(row["channel_id"]), TronAddress.parse(row["payee"]),
        SignedOp.from_json(json.loads(row["call"])), row["recorded_at"],
    )  # fmt: skip
