"""The edge's channel rows on disk: SQLite in WAL mode with ``synchronous=FULL``, one
writer thread, and group commit.

Split from :mod:`cdn_edge.payments`, which decides what a channel's state is; this only
makes it durable. Rows queued while a commit runs (or in the same loop tick) go to disk
in one transaction and one fsync, in the order they changed, and each caller waits until
the transaction holding its row commits: a returned :meth:`ChannelRows.save` is on disk,
so the chunk it pays for may be sent.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar

from requester.failpoints import reached
from requester.protocol import PayeeChannel, TronAddress, asset_by_code

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    channel_id TEXT PRIMARY KEY, payer TEXT NOT NULL, asset INTEGER NOT NULL,
    deposit TEXT NOT NULL, expires_at INTEGER NOT NULL, best BLOB, paid TEXT NOT NULL,
    consumed TEXT NOT NULL, redeemed TEXT NOT NULL);
"""

Row = tuple[str, str, int, str, int, bytes | None, str, str, str]
"""A ``channels`` row, in column order."""


@dataclass(frozen=True)
class ChannelRecord:
    channel_id: str
    payer: str
    asset: str
    deposit: int
    paid: int
    consumed: int
    redeemed: int
    expires_at: int


class ChannelRows:
    """The ``channels`` table of one edge's payments database."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="payments-db")
        self._conn: sqlite3.Connection | None = None
        self._queue: list[tuple[Row, asyncio.Future[None]]] = []
        """Channel states waiting for the next group commit, in the order they changed."""
        self._writer: asyncio.Task[None] | None = None

    async def open(self) -> None:
        await self._run(self._connect)

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.wait({self._writer})  # what was accepted reaches the disk first
        await self._run(self._disconnect)
        self._db.shutdown()

    async def row(self, channel_id: bytes) -> sqlite3.Row | None:
        return await self._run(self._row, channel_id)

    async def rows(self) -> list[Any]:
        return await self._run(self._all_rows)

    async def records(self) -> list[ChannelRecord]:
        return [_record(r) for r in await self.rows()]

    async def save(self, channel: PayeeChannel) -> None:
        """Return once ``channel``'s current state is committed (synchronous=FULL).

        The row is taken now, on the loop, so the queue holds states in the order they
        changed; every write goes through it, so a later state is never overwritten by
        an earlier one.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((_row_of(channel), done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        await asyncio.shield(done)  # a cancelled request must not drop others' results

    async def _write_queued(self) -> None:
        """Commit everything queued, batch after batch, until the queue is empty."""
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._run(self._save_rows, [row for row, _ in batch])
            except BaseException as exc:
                for _, done in batch:
                    if isinstance(exc, Exception):
                        done.set_exception(exc)
                    else:
                        done.cancel()
                if not isinstance(exc, Exception):
                    raise
            else:
                for _, done in batch:
                    done.set_result(None)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, partial(fn, *args))

    def _connect(self) -> None:
        self._conn = sqlite3.connect(self._path, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def _row(self, channel_id: bytes) -> sqlite3.Row | None:
        assert self._conn is not None
        row: sqlite3.Row | None = self._conn.execute(
            "SELECT * FROM channels WHERE channel_id=?", (channel_id.hex(),)
        ).fetchone()
        return row

    def _all_rows(self) -> list[Any]:
        assert self._conn is not None
        return self._conn.execute("SELECT * FROM channels ORDER BY channel_id").fetchall()

    def _save_rows(self, rows: list[Row]) -> None:
        """One transaction for the batch, in order (a later row of a channel wins)."""
        assert self._conn is not None
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(
                "INSERT INTO channels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(channel_id) "
                "DO UPDATE SET deposit=excluded.deposit, expires_at=excluded.expires_at, "
                "best=excluded.best, paid=excluded.paid, consumed=excluded.consumed, "
                "redeemed=excluded.redeemed",
                rows,
            )
            reached("edge.payments_before_commit")
            self._conn.execute("COMMIT")
            reached("edge.payments_committed")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise


def _row_of(channel: PayeeChannel) -> Row:
    t = channel.terms
    return (
        t.channel_id.hex(), base58(t.payer), t.asset.code, str(t.deposit), t.expires_at,
        channel.best.encode() if channel.best else None, str(channel.paid),
        str(channel.consumed), str(channel.redeemed),
    )  # fmt: skip


@lru_cache(maxsize=4096)  # base58check costs two SHA-256s and a bignum loop per call
def base58(address: TronAddress) -> str:
    return str(address)


def _record(row: Any) -> ChannelRecord:
    return ChannelRecord(
        row["channel_id"], row["payer"], asset_by_code(row["asset"]).uri, int(row["deposit"]),
        int(row["paid"]), int(row["consumed"]), int(row["redeemed"]), row["expires_at"],
    )  # fmt: skip
