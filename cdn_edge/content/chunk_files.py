"""Cutting an origin body into chunks as it streams by: split on the event loop, hashed and
written piece by piece in a worker thread, never joined in memory.

The loop splits each piece the origin sends at chunk boundaries without copying
(:class:`ChunkCutter`) and hands the parts to the worker thread in order
(:class:`ChunkFiles`), which feeds each part to the chunk's SHA-256 and appends it to
the chunk's temporary file; at a chunk's end it signs the statement. hashlib and the
write release the GIL, so both cores work while the loop reads the next piece. The
file is not in the store until the db thread renames it into place with the chunk's row
(:meth:`ContentIndex.add_chunk`), so eviction never sees a file without its row.

Nothing holds a whole chunk: memory per fetch is the parts queued for the worker
(bounded in bytes by the caller) plus the HTTP client's read buffer. Joining 1 MiB
chunks cost a copy of every byte, a fresh 1 MiB allocation per chunk (page faults: the
allocator hands such blocks back to the kernel when freed), and 1-2 MiB of peak RSS.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cdn_edge.content.chunk_store import ChunkStore
from requester.file_writes import write_all
from requester.protocol import ChunkStatement, ManifestHead, NodeKey
from requester.protocol.errors import MalformedMessage
from requester.protocol.manifest import MAX_CHUNKS

Part = bytes | memoryview


class ChunkCutter:
    """Splits pieces of any size at every ``size`` bytes, without copying: the parts of a
    chunk come in order, the last one flagged as its end (the last chunk may be shorter)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._held = 0
        """Bytes of the current chunk fed so far (its next part's offset)."""
        self.count = 0
        """Chunks ended so far (the current chunk's index)."""
        self.total = 0
        """Bytes fed so far."""

    def feed(self, data: Part) -> list[tuple[Part, int, bool]]:
        """``(part, its offset in its chunk, whether it ends the chunk)`` for each part."""
        if not data:
            return []
        if not self._held and self.count >= MAX_CHUNKS:
            raise MalformedMessage(f"content exceeds {MAX_CHUNKS} chunks")
        room = self._size - self._held
        if len(data) < room:  # the common case: inside one chunk
            offset, self._held = self._held, self._held + len(data)
            self.total += len(data)
            return [(data, offset, False)]
        view, out = memoryview(data), list[tuple[Part, int, bool]]()
        while view:
            if not self._held and self.count >= MAX_CHUNKS:
                raise MalformedMessage(f"content exceeds {MAX_CHUNKS} chunks")
            take = min(self._size - self._held, len(view))
            out.append((view[:take], self._held, self._held + take == self._size))
            self._advance(take)
            view = view[take:]
        return out

    def finish(self) -> int | None:
        """The length of the last, short chunk (to be ended), if the body did not end on a
        chunk boundary."""
        if not self._held:
            return None
        held, self._held = self._held, 0
        self.count += 1
        return held

    def _advance(self, taken: int) -> None:
        self._held += taken
        self.total += taken
        if self._held == self._size:
            self._held = 0
            self.count += 1


@dataclass(frozen=True, slots=True)
class Prepared:
    """A chunk signed and written to ``tmp``, not yet in the store."""

    statement: ChunkStatement
    tmp: Path


class ChunkFiles:
    """The chunks of one body being hashed and written, on the worker thread: parts are
    taken in the order the loop cut them; a part out of order (one before it was lost)
    fails the chunk instead of writing a file that is not the body's."""

    def __init__(self, store: ChunkStore, key: NodeKey, head: ManifestHead) -> None:
        self._store, self._key, self._head = store, key, head
        self._lock = threading.Lock()  # take and abort never interleave, whatever thread
        self._tmp: Path | None = None
        self._fd = -1
        self._hash = hashlib.sha256()
        self._written = 0
        self._aborted = False

    def take(self, part: Part, offset: int, end: int | None) -> Prepared | None:
        """Append ``part`` (at ``offset`` in its chunk) to the current chunk; with ``end``,
        the chunk's index, close it and sign it."""
        with self._lock:
            if self._aborted:
                raise RuntimeError("the body's chunk files were aborted")
            if offset != self._written:
                wrong = RuntimeError(f"chunk part at {offset}, expected {self._written}")
                self._close(unlink=True)
                raise wrong
            if part:
                if self._tmp is None:
                    self._tmp, self._fd = self._store.open_tmp()
                self._hash.update(part)
                write_all(partial(os.write, self._fd), part)
                self._written += len(part)
            return None if end is None else self._end(end)

    def abort(self) -> None:
        """Remove the chunk being written, if any; no part is taken after this."""
        with self._lock:
            self._aborted = True
            self._close(unlink=True)

    def _end(self, index: int) -> Prepared:
        digest, size, tmp = self._hash.digest(), self._written, self._tmp
        self._close(unlink=False)
        if tmp is None:
            raise MalformedMessage(f"chunk {index} is empty")
        try:
            statement = self._head.statement_of(self._key, index, size, digest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return Prepared(statement, tmp)

    def _close(self, *, unlink: bool) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        if unlink and self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        self._tmp, self._fd, self._written = None, -1, 0
        self._hash = hashlib.sha256()
