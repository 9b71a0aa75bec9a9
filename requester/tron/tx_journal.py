"""The TRON transactions of one signer, on disk before they are broadcast.

Each row is one *intent*: something that must apply exactly once (an open by
its ``op_hash``, an approve for it, a redeem of a channel up to an amount, a
reclaim). Its parameters are fixed when it is first journaled (a top-up's
target deposit is computed then, never again), and the signed transaction that
carries it is committed here, with its txID and expiration, before a byte of it
is broadcast. After a crash or a lost answer the same bytes are broadcast again
and their receipt polled until they expire; only a transaction that expired
without being included is ever replaced by a new one (its txID is kept in
``superseded``).

States: ``new`` (journaled, nothing signed, nothing sent), ``signed`` (a
transaction persisted; it may have been broadcast), ``confirmed`` (its receipt
says SUCCESS), ``failed`` (its receipt says it reverted or ran out of energy, or
the node refused it: it applied nothing, so a later attempt may build anew).

One SQLite file per data dir (``tron-txs.sqlite3``), in WAL mode with
``synchronous=FULL``: a row committed before a broadcast survives a kill -9 and a
power cut. Several processes of one wallet may share it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JOURNAL_FILE = "tron-txs.sqlite3"
STATES = ("new", "signed", "confirmed", "failed")

SCHEMA = """
CREATE TABLE IF NOT EXISTS tron_txs (
    intent TEXT PRIMARY KEY, kind TEXT NOT NULL, signer TEXT NOT NULL,
    channel_id TEXT NOT NULL, params TEXT NOT NULL, state TEXT NOT NULL,
    tx TEXT, txid TEXT, expiration INTEGER, receipt TEXT,
    superseded TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tron_txs_channel ON tron_txs (channel_id, kind, state);
"""


@dataclass(frozen=True)
class Entry:
    """One journaled intent as it stands."""

    intent: str
    kind: str
    signer: str
    channel_id: str
    params: dict[str, Any]
    state: str
    tx: dict[str, Any] | None
    """The signed transaction (tronpy's ``to_json()``) while one is in flight or done."""
    txid: str | None
    expiration: int | None
    """When ``tx`` expires, in ms of the node's clock (its head block's timestamp)."""
    receipt: dict[str, Any] | None
    superseded: list[str]

    @property
    def unfinished(self) -> bool:
        return self.state in ("new", "signed")


class TxJournal:
    """The journal in ``path`` (``:memory:`` keeps it in this process only: not crash safe)."""

    def __init__(self, path: Path | str) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a committed row survives a power cut
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def begin(self, intent: str, kind: str, signer: str, channel_id: bytes,
              params: dict[str, Any]) -> Entry:  # fmt: skip
        """The intent's row, journaled now with ``params`` unless it already was (then its
        first parameters stand)."""
        now = int(time.time())
        self._db.execute(
            "INSERT OR IGNORE INTO tron_txs (intent, kind, signer, channel_id, params, state, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'new', ?, ?)",
            (intent, kind, signer, channel_id.hex(), json.dumps(params, sort_keys=True), now,
             now),
        )  # fmt: skip
        entry = self.get(intent)
        assert entry is not None
        return entry

    def get(self, intent: str) -> Entry | None:
        row = self._db.execute("SELECT * FROM tron_txs WHERE intent=?", (intent,)).fetchone()
        return None if row is None else _entry(row)

    def signed(self, intent: str, tx: dict[str, Any], txid: str, expiration: int) -> bool:
        """Persist the transaction about to be broadcast (committed when this returns);
        False if another process of this wallet signed one for the intent first (then
        that one is followed, and this one is never sent)."""
        cursor = self._db.execute(
            "UPDATE tron_txs SET state='signed', tx=?, txid=?, expiration=?, receipt=NULL, "
            "updated_at=? WHERE intent=? AND state IN ('new', 'failed')",
            (json.dumps(tx, sort_keys=True), txid, expiration, int(time.time()), intent),
        )
        return bool(cursor.rowcount == 1)

    def confirmed(self, intent: str, receipt: dict[str, Any] | None) -> None:
        """The intent applied (``receipt`` None: found applied by other means)."""
        self._update(intent, "state='confirmed', receipt=?", (_json(receipt),))

    def failed(self, intent: str, receipt: dict[str, Any]) -> None:
        """The transaction applied nothing: reverted, out of energy, or refused by the node."""
        self._update(intent, "state='failed', receipt=?", (json.dumps(receipt),))

    def expired(self, intent: str) -> None:
        """The transaction expired without being included: it never can be now, so the
        intent goes back to ``new`` and may be carried by a new transaction."""
        self.renew(intent)

    def renew(self, intent: str) -> None:
        """Back to ``new``: a new transaction may carry the intent (the last one's txID is
        kept in ``superseded``)."""
        entry = self.get(intent)
        if entry is None:
            return
        superseded = [*entry.superseded, *([entry.txid] if entry.txid else [])]
        self._update(
            intent,
            "state='new', tx=NULL, txid=NULL, expiration=NULL, receipt=NULL, superseded=?",
            (json.dumps(superseded),),
        )

    def unfinished(self, kind: str, channel_id: bytes) -> list[Entry]:
        """Intents of ``kind`` on a channel that are journaled and not finished."""
        rows = self._db.execute(
            "SELECT * FROM tron_txs WHERE kind=? AND channel_id=? AND state IN ('new', 'signed') "
            "ORDER BY created_at",
            (kind, channel_id.hex()),
        ).fetchall()
        return [_entry(r) for r in rows]

    def entries(self, kind: str | None = None) -> list[Entry]:
        """Every intent (of ``kind``), oldest first."""
        rows = self._db.execute(
            "SELECT * FROM tron_txs WHERE ? IS NULL OR kind=? ORDER BY created_at, rowid",
            (kind, kind),
        ).fetchall()
        return [_entry(r) for r in rows]

    def channel_ids(self) -> list[bytes]:
        """Channels opened through this journal, oldest first."""
        rows = self._db.execute(
            "SELECT channel_id FROM tron_txs WHERE kind='open' AND state='confirmed' "
            "GROUP BY channel_id ORDER BY min(created_at)"
        ).fetchall()
        return [bytes.fromhex(r["channel_id"]) for r in rows]

    def _update(self, intent: str, assignments: str, values: tuple[Any, ...]) -> None:
        self._db.execute(
            f"UPDATE tron_txs SET {assignments}, updated_at=? WHERE intent=?",  # noqa: S608 (fixed text)
            (*values, int(time.time()), intent),
        )


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value)


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(
        row["intent"], row["kind"], row["signer"], row["channel_id"], json.loads(row["params"]),
        row["state"], None if row["tx"] is None else json.loads(row["tx"]), row["txid"],
        row["expiration"], None if row["receipt"] is None else json.loads(row["receipt"]),
        json.loads(row["superseded"]),
    )  # fmt: skip
