"""What content an edge holds: heads, chunk statements, seals and cache metadata.

SQLite, one row per content and one per chunk. The chunk bytes themselves are
in :class:`~cdn_edge.content.chunk_store.ChunkStore`; this index says which chunks
each content uses, so eviction removes a file only when no content needs it.

The index is a cache, written with ``synchronous=NORMAL``: a commit is not
fsynced, so storing a chunk costs a WAL append, not a disk flush. A process
crash loses nothing (the OS has the WAL); a power cut can lose the last
commits, always a suffix, so content whose seal is lost is unsealed and
dropped at the next start, like any fetch an edge stopped in. Deleting rows
is the exception: it is made durable before the chunk files go, so no row
can outlive its file.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cdn_edge.content.chunk_store import ChunkStore
from cdn_edge.content.http_cache import CachePolicy

SCHEMA = """
CREATE TABLE IF NOT EXISTS content (
    content_id TEXT PRIMARY KEY, url TEXT NOT NULL, cache_key TEXT NOT NULL,
    vary TEXT NOT NULL, head BLOB NOT NULL, seal BLOB, total_size INTEGER NOT NULL DEFAULT 0,
    stored_at REAL NOT NULL, last_access REAL NOT NULL, fresh_until REAL NOT NULL,
    storable INTEGER NOT NULL, etag TEXT, last_modified TEXT);
CREATE INDEX IF NOT EXISTS content_url ON content (url);
CREATE TABLE IF NOT EXISTS chunks (
    content_id TEXT NOT NULL, idx INTEGER NOT NULL, sha256 BLOB NOT NULL,
    size INTEGER NOT NULL, statement BLOB NOT NULL, PRIMARY KEY (content_id, idx));
CREATE INDEX IF NOT EXISTS chunks_sha ON chunks (sha256);
"""


@dataclass(frozen=True)
class StoredContent:
    content_id: bytes
    url: str
    cache_key: str
    head: bytes
    seal: bytes | None
    policy: CachePolicy


class ContentIndex:
    def __init__(self, path: Path, store: ChunkStore, cap_bytes: int) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self.store = store
        self.cap_bytes = cap_bytes
        # Content that never sealed (edge stopped mid-fetch) cannot be served whole: drop it.
        for row in self._db.execute("SELECT content_id FROM content WHERE seal IS NULL").fetchall():
            self._drop(row["content_id"])

    def close(self) -> None:
        self._db.close()

    def add_content(self, content_id: bytes, url: str, key: str, head: bytes, policy: CachePolicy,
                    now: float) -> None:  # fmt: skip
        self._db.execute(
            "INSERT OR REPLACE INTO content VALUES (?, ?, ?, ?, ?, NULL, 0, ?, ?, ?, ?, ?, ?)",
            (content_id.hex(), url, key, json.dumps(policy.vary), head, now, now,
             policy.fresh_until, int(policy.storable), policy.etag, policy.last_modified),
        )  # fmt: skip

    def add_chunk(self, content_id: bytes, index: int, sha256: bytes, size: int,
                  statement: bytes, tmp: Path | None, data: bytes | None = None,
                  ) -> None:  # fmt: skip
        """The chunk's file (``tmp`` renamed into place if a worker wrote it, else written
        from ``data``, see :meth:`ChunkStore.adopt`) and its row, in one call on the db
        thread."""
        self.store.adopt(sha256, tmp, data)
        self._db.execute(
            "INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?)",
            (content_id.hex(), index, sha256, size, statement),
        )

    def seal(self, content_id: bytes, seal: bytes, total_size: int) -> None:
        self._db.execute(
            "UPDATE content SET seal=?, total_size=? WHERE content_id=?",
            (seal, total_size, content_id.hex()),
        )

    def drop(self, content_id: bytes) -> None:
        self._drop(content_id.hex())

    def variants(self, url: str) -> list[StoredContent]:
        """Sealed, storable content for ``url``, newest first."""
        rows = self._db.execute(
            "SELECT * FROM content WHERE url=? AND seal IS NOT NULL AND storable=1 "
            "ORDER BY stored_at DESC",
            (url,),
        ).fetchall()
        return [_stored(r) for r in rows]

    def get(self, content_id: bytes) -> StoredContent | None:
        row = self._db.execute(
            "SELECT * FROM content WHERE content_id=?", (content_id.hex(),)
        ).fetchone()
        return _stored(row) if row else None

    def statements(self, content_id: bytes) -> list[tuple[int, bytes, bytes]]:
        """``(index, sha256, statement)`` for every stored chunk, in order."""
        rows = self._db.execute(
            "SELECT idx, sha256, statement FROM chunks WHERE content_id=? ORDER BY idx",
            (content_id.hex(),),
        ).fetchall()
        return [(r["idx"], r["sha256"], r["statement"]) for r in rows]

    def touch(self, content_id: bytes, now: float, fresh_until: float | None = None) -> None:
        if fresh_until is None:
            self._db.execute(
                "UPDATE content SET last_access=? WHERE content_id=?", (now, content_id.hex())
            )
        else:
            self._db.execute(
                "UPDATE content SET last_access=?, fresh_until=? WHERE content_id=?",
                (now, fresh_until, content_id.hex()),
            )

    def fresh_urls(self, now: float, limit: int) -> list[str]:
        """URLs of sealed, storable content still fresh at ``now``, most recently used first
        (what an edge announces to sibling caches; torrent keys are not URLs)."""
        rows = self._db.execute(
            "SELECT url FROM content WHERE seal IS NOT NULL AND storable=1 AND fresh_until>? "
            "AND url LIKE 'http%' GROUP BY url ORDER BY MAX(last_access) DESC LIMIT ?",
            (now, limit),
        ).fetchall()
        return [r["url"] for r in rows]

    def content_ids(self) -> list[bytes]:
        rows = self._db.execute("SELECT content_id FROM content WHERE seal IS NOT NULL")
        return [bytes.fromhex(r["content_id"]) for r in rows]

    def stored_bytes(self) -> int:
        row = self._db.execute(
            "SELECT COALESCE(SUM(size), 0) AS n FROM "
            "(SELECT sha256, MAX(size) AS size FROM chunks GROUP BY sha256)"
        ).fetchone()
        return int(row["n"])

    def evict(self, keep: set[bytes]) -> int:
        """Drop least recently used sealed content until under the cap; returns bytes freed."""
        freed = 0
        used = self.stored_bytes()
        rows = self._db.execute(
            "SELECT content_id FROM content WHERE seal IS NOT NULL ORDER BY last_access"
        ).fetchall()
        for row in rows:
            if used - freed <= self.cap_bytes:
                break
            if bytes.fromhex(row["content_id"]) in keep:
                continue
            freed += self._drop(row["content_id"])
        return freed

    def _drop(self, content_hex: str) -> int:
        self._db.execute("PRAGMA synchronous=FULL")  # this commit is flushed (and all before)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                shas = {
                    r["sha256"]
                    for r in self._db.execute(
                        "SELECT sha256 FROM chunks WHERE content_id=?", (content_hex,)
                    ).fetchall()
                }
                self._db.execute("DELETE FROM chunks WHERE content_id=?", (content_hex,))
                self._db.execute("DELETE FROM content WHERE content_id=?", (content_hex,))
                unused = [
                    sha
                    for sha in shas
                    if not self._db.execute(
                        "SELECT 1 FROM chunks WHERE sha256=?", (sha,)
                    ).fetchone()
                ]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")
        return sum(self.store.delete(sha) for sha in unused)


def _stored(row: sqlite3.Row) -> StoredContent:
    policy = CachePolicy(
        bool(row["storable"]), row["fresh_until"], row["etag"], row["last_modified"],
        tuple(json.loads(row["vary"])),
    )  # fmt: skip
    return StoredContent(
        bytes.fromhex(row["content_id"]), row["url"], row["cache_key"], row["head"], row["seal"],
        policy,
    )  # fmt: skip
