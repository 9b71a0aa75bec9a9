"""The files of a body's chunks being written as it streams by, on a worker thread.

The protocol's streaming publisher (:mod:`requester.protocol.publishing`) does the
protocol's part: the loop cuts each piece the origin sends at chunk boundaries without
copying (ChunkCutter) and hands the parts to the worker thread in order; there
:class:`ChunkFiles` feeds each part to the chunk's SHA-256 (ChunkSigner) and appends it
to the chunk's temporary file, and at a chunk's end returns its signed statement with
the file. hashlib and the write release the GIL, so both cores work while the loop reads
the next piece. The file is not in the store until the db thread renames it into place
with the chunk's row (:meth:`ContentIndex.add_chunk`), so eviction never sees a file
without its row.

Nothing holds a whole chunk: memory per fetch is the parts queued for the worker
(bounded in bytes by the caller) plus the HTTP client's read buffer.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cdn_edge.content.chunk_store import ChunkStore
from requester.file_writes import write_all
from requester.protocol import ChunkStatement, ManifestHead, NodeKey, Seal
from requester.protocol.publishing import ChunkSigner, Cut


@dataclass(frozen=True, slots=True)
class Prepared:
    """A chunk signed and written to ``tmp``, not yet in the store."""

    statement: ChunkStatement
    tmp: Path


class ChunkFiles:
    """The chunks of one body being hashed, signed and written, on the worker thread: parts
    are taken in the order the loop cut them; a part out of order (one before it was lost)
    fails the chunk instead of writing a file that is not the body's."""

    def __init__(self, store: ChunkStore, key: NodeKey, head: ManifestHead) -> None:
        self._store = store
        self._signer = ChunkSigner(key, head)
        self._lock = threading.Lock()  # take and abort never interleave, whatever thread
        self._tmp: Path | None = None
        self._fd = -1
        self._aborted = False

    def take(self, cut: Cut) -> Prepared | None:
        """Append ``cut``'s part to its chunk's file; at the chunk's end, close it and sign it."""
        with self._lock:
            if self._aborted:
                raise RuntimeError("the body's chunk files were aborted")
            try:
                statement = self._signer.take(cut)
            except BaseException:
                self._close(unlink=True)
                raise
            if cut.data:
                if self._tmp is None:
                    self._tmp, self._fd = self._store.open_tmp()
                write_all(partial(os.write, self._fd), cut.data)
            if statement is None:
                return None
            tmp = self._tmp
            self._close(unlink=False)
            assert tmp is not None  # a signed chunk has bytes, so a file
            return Prepared(statement, tmp)

    def seal(self) -> Seal:
        """The seal over every chunk taken, once the last one has been (after its job)."""
        with self._lock:
            return self._signer.seal()

    def abort(self) -> None:
        """Remove the chunk being written, if any; no part is taken after this."""
        with self._lock:
            self._aborted = True
            self._close(unlink=True)

    def _close(self, *, unlink: bool) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        if unlink and self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        self._tmp, self._fd = None, -1
