"""The edge's own history for its dashboard: one row per sample interval (a minute by
default) in ``history.sqlite3`` in the data dir, so the plots survive a restart.

A row holds what the edge had earned and redeemed in all (cumulative, from the payment
book, which is durable itself) and what it sent and answered during the interval
(deltas of counters that start again at zero with each process). Rows older than
:data:`KEEP_SECONDS` go, and never more than :data:`MAX_ROWS` are kept, whatever the
interval: the file stays well under a few MiB.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from dataclasses import astuple, dataclass, fields
from pathlib import Path

KEEP_SECONDS = 8 * 86400
"""A week of history for "last 7 days", and a day more so the week's start is held."""
MAX_ROWS = 20_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    t INTEGER PRIMARY KEY, seconds REAL NOT NULL, earned TEXT NOT NULL,
    redeemed TEXT NOT NULL, paid_bytes INTEGER NOT NULL, free_bytes INTEGER NOT NULL,
    hits INTEGER NOT NULL, misses INTEGER NOT NULL, stored_bytes INTEGER NOT NULL,
    channels INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Sample:
    """One interval ending at ``t`` (unix seconds) and lasting ``seconds``."""

    t: int
    seconds: float
    earned: int
    """Cumulative voucher amounts accepted, base units of the ledger's asset."""
    redeemed: int
    """Cumulative amounts redeemed, base units."""
    paid_bytes: int
    """Bytes sent in the interval through the paid lane (paid chunks without a market)."""
    free_bytes: int
    hits: int
    """Fetches answered without the origin sending the body (HIT, REVALIDATED, STALE, ...)."""
    misses: int
    stored_bytes: int
    channels: int
    """Channels open at ``t``."""

    @property
    def sent_bytes(self) -> int:
        return self.paid_bytes + self.free_bytes


class History:
    """The samples table; every call runs in a worker thread (a few ms, once a minute)."""

    def __init__(self, path: Path, *, max_rows: int = MAX_ROWS) -> None:
        self._path = path
        self._max_rows = max_rows
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        """One call at a time: a cancelled caller's thread may still be running its call."""

    async def open(self) -> None:
        await asyncio.to_thread(self._connect)

    async def close(self) -> None:
        if self._conn is not None:
            await asyncio.to_thread(self._close)

    async def add(self, sample: Sample) -> None:
        """Keep ``sample`` (a second sample at the same ``t`` adds to the first)."""
        await asyncio.to_thread(self._add, sample)

    async def since(self, t: float) -> list[Sample]:
        """Samples after ``t``, oldest first."""
        return await asyncio.to_thread(self._select, "WHERE t > ? ORDER BY t", (int(t),))

    async def at(self, t: float) -> Sample | None:
        """The last sample at or before ``t``; else the first one kept (None if none)."""
        rows = await asyncio.to_thread(
            self._select, "WHERE t <= ? ORDER BY t DESC LIMIT 1", (int(t),)
        )
        if not rows:
            rows = await asyncio.to_thread(self._select, "ORDER BY t LIMIT 1", ())
        return rows[0] if rows else None

    async def count(self) -> int:
        return await asyncio.to_thread(self._count)

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connect(self) -> None:
        self._conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # a lost last sample costs nothing
        self._conn.executescript(SCHEMA)

    def _add(self, s: Sample) -> None:
        with self._lock:
            assert self._conn is not None
            row = astuple(s)
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(t) DO "
                    "UPDATE SET seconds=seconds+excluded.seconds, earned=excluded.earned, "
                    "redeemed=excluded.redeemed, paid_bytes=paid_bytes+excluded.paid_bytes, "
                    "free_bytes=free_bytes+excluded.free_bytes, hits=hits+excluded.hits, "
                    "misses=misses+excluded.misses, stored_bytes=excluded.stored_bytes, "
                    "channels=excluded.channels",
                    (*row[:2], str(s.earned), str(s.redeemed), *row[4:]),
                )
                self._conn.execute("DELETE FROM samples WHERE t < ?", (s.t - KEEP_SECONDS,))
                self._conn.execute(
                    "DELETE FROM samples WHERE t <= (SELECT t FROM samples ORDER BY t DESC "
                    "LIMIT 1 OFFSET ?)",
                    (self._max_rows,),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def _select(self, where: str, args: tuple[int, ...]) -> list[Sample]:
        with self._lock:
            assert self._conn is not None
            names = ", ".join(f.name for f in fields(Sample))
            rows = self._conn.execute(f"SELECT {names} FROM samples {where}", args).fetchall()  # noqa: S608 (fixed clauses)
            return [Sample(r[0], r[1], int(r[2]), int(r[3]), *r[4:]) for r in rows]

    def _count(self) -> int:
        with self._lock:
            assert self._conn is not None
            return int(self._conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
