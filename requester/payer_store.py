"""The payer's channels on disk: the highest voucher amount ever signed, per channel.

Written with ``synchronous=FULL`` *before* a voucher is sent, so after a
crash the payer resumes from the highest amount it ever signed and never
signs a lower or equal one again. SQLite calls are quick and local; they run
inline (one small write per payment).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from requester.failpoints import reached
from requester.protocol import (
    Asset,
    ChannelTerms,
    PaymentDomain,
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
"""


@dataclass(frozen=True)
class StoredChannel:
    ledger: str
    terms: ChannelTerms
    issued: int
    status: str
    opened_at: int


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

    def add(self, ledger: str, terms: ChannelTerms, now: int) -> None:
        self._db.execute(
            "INSERT INTO channels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '0', 'open', ?)",
            (terms.channel_id.hex(), ledger, terms.domain.chain_id, terms.domain.contract.hex(),
             str(terms.payer), str(terms.payee), terms.asset.code, str(terms.deposit),
             terms.expires_at, now),
        )  # fmt: skip

    def record_issued(self, channel_id: bytes, amount: int) -> None:
        """Durably raise the issued amount; refuses to lower it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute(
                "SELECT issued FROM channels WHERE channel_id=?", (channel_id.hex(),)
            ).fetchone()
            if row is None or int(row["issued"]) >= amount:
                raise ValueError(f"voucher amount {amount} is not above what was already issued")
            self._db.execute(
                "UPDATE channels SET issued=? WHERE channel_id=?", (str(amount), channel_id.hex())
            )
            self._db.execute("COMMIT")
            reached("payer.voucher_persisted")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def update_terms(self, terms: ChannelTerms) -> None:
        self._db.execute(
            "UPDATE channels SET deposit=?, expires_at=? WHERE channel_id=?",
            (str(terms.deposit), terms.expires_at, terms.channel_id.hex()),
        )

    def set_status(self, channel_id: bytes, status: str) -> None:
        self._db.execute(
            "UPDATE channels SET status=? WHERE channel_id=?", (status, channel_id.hex())
        )

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
