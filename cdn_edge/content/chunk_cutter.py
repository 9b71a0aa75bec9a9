"""Cutting an origin body into chunks on the event loop, and signing and writing each
chunk in a worker thread.

The loop copies each body byte once, into the chunk it belongs to
(:class:`ChunkCutter`); the chunk's SHA-256, its Ed25519 statement and the write of
its file to the store's temporary directory (:func:`prepare`) run in a worker
thread, where hashlib, PyNaCl and the write release the GIL, so both cores work
while the loop reads the next piece. The file is not in the store until the db
thread renames it into place with the chunk's row (:meth:`ContentIndex.add_chunk`),
so eviction still never sees a file without its row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdn_edge.content.chunk_store import ChunkStore
from requester.protocol import ChunkStatement, ManifestHead, NodeKey
from requester.protocol.errors import MalformedMessage
from requester.protocol.manifest import MAX_CHUNKS


class ChunkCutter:
    """Turns pieces of any size into chunks of ``size`` bytes (the last may be shorter),
    joining the parts of a chunk in one copy; a piece that is a whole chunk is kept as is."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._parts: list[bytes | memoryview] = []
        self._held = 0
        self.count = 0
        """Chunks cut so far (the next chunk's index)."""
        self.total = 0
        """Bytes in the chunks cut so far."""

    def feed(self, data: bytes) -> list[bytes]:
        size, out = self._size, []
        if not self._parts and len(data) == size:
            out.append(self._emit([data], size))  # the common aligned case: no copy at all
            return out
        view = memoryview(data)
        while view:
            take = min(size - self._held, len(view))
            self._parts.append(view[:take])
            self._held += take
            view = view[take:]
            if self._held == size:
                out.append(self._emit(self._parts, size))
                self._parts, self._held = [], 0
        return out

    def finish(self) -> bytes | None:
        """The last, short chunk, if the body did not end on a chunk boundary."""
        if not self._held:
            return None
        last = self._emit(self._parts, self._held)
        self._parts, self._held = [], 0
        return last

    def _emit(self, parts: list[bytes | memoryview], length: int) -> bytes:
        if self.count >= MAX_CHUNKS:
            raise MalformedMessage(f"content exceeds {MAX_CHUNKS} chunks")
        self.count += 1
        self.total += length
        return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A chunk signed and written, not yet in the store: ``tmp`` is its file (None when
    the store already held a file of the same bytes)."""

    statement: ChunkStatement
    tmp: Path | None


def prepare(store: ChunkStore, key: NodeKey, head: ManifestHead, index: int,
            data: bytes) -> Prepared:  # fmt: skip
    """Hash and sign chunk ``index`` and write it to a temporary file (a worker thread's job)."""
    statement = head.statement(key, index, data)
    return Prepared(statement, store.write_tmp(statement.sha256, data))
