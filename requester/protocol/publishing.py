"""Publishing a body as it streams (edge side): cut at chunk boundaries, each chunk hashed
part by part and its statement signed at its end, the seal at the body's end.

Two stages, so an edge can split on its event loop and hash on a worker thread (hashlib
and Ed25519 release the GIL): :class:`ChunkCutter` splits the pieces a socket hands over
into :class:`Cut` parts without copying, and :class:`ChunkSigner` takes those parts in
the order cut. Neither joins a chunk in memory: joining 1 MiB chunks cost a copy of
every byte, a fresh 1 MiB allocation per chunk (page faults: the allocator hands such
blocks back to the kernel when freed) and 1-2 MiB of peak RSS. A caller storing the
chunks writes each part where it wants (the edge appends it to the chunk's file);
:class:`requester.protocol.ContentPublisher` joins them for callers that want whole
chunks. Either way the statements and the seal are the same bytes for any cut of one body.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from requester.protocol.errors import MalformedMessage
from requester.protocol.identity import NodeKey
from requester.protocol.manifest import MAX_CHUNKS, ChunkStatement, ManifestHead, Seal

Part = bytes | memoryview


class Cut(NamedTuple):
    """One part of one chunk, as cut from a piece of the body."""

    data: Part
    offset: int
    """Where ``data`` starts in its chunk."""
    chunk: int
    """The index of the chunk it belongs to."""
    ends: bool
    """Whether ``data`` is the chunk's last part (its statement is signed on taking it)."""


class ChunkCutter:
    """Splits pieces of any size at every ``size`` bytes, without copying: the parts of a
    chunk come in order, the last one marked as its end (the last chunk may be shorter)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._held = 0
        """Bytes of the current chunk fed so far (its next part's offset)."""
        self.count = 0
        """Chunks ended so far (the current chunk's index)."""
        self.total = 0
        """Bytes fed so far."""

    def feed(self, data: Part) -> list[Cut]:
        """The parts ``data`` makes, in order; a piece inside one chunk is passed on as is."""
        if not data:
            return []
        if not self._held and self.count >= MAX_CHUNKS:
            raise MalformedMessage(f"content exceeds {MAX_CHUNKS} chunks")
        room = self._size - self._held
        if len(data) < room:  # the common case: inside one chunk
            offset, self._held = self._held, self._held + len(data)
            self.total += len(data)
            return [Cut(data, offset, self.count, False)]
        view, out = memoryview(data), list[Cut]()
        while view:
            if not self._held and self.count >= MAX_CHUNKS:
                raise MalformedMessage(f"content exceeds {MAX_CHUNKS} chunks")
            take = min(self._size - self._held, len(view))
            ends = self._held + take == self._size
            out.append(Cut(view[:take], self._held, self.count, ends))
            self._held += take
            self.total += take
            if ends:
                self._held = 0
                self.count += 1
            view = view[take:]
        return out

    def finish(self) -> Cut | None:
        """An empty part ending the last, short chunk, if the body did not end on a chunk
        boundary; feed nothing after it."""
        if not self._held:
            return None
        held, self._held = self._held, 0
        self.count += 1
        return Cut(b"", held, self.count - 1, True)


class ChunkSigner:
    """Hashes the parts of each chunk as they come and signs its statement at its end; keeps
    the ordered hash list for the seal. Parts must come in the order they were cut: one out
    of order (a part before it lost) is refused, never hashed into the wrong chunk."""

    def __init__(self, key: NodeKey, head: ManifestHead) -> None:
        self._key, self._head = key, head
        self._hash = hashlib.sha256()
        self._written = 0
        """Bytes of the current chunk taken so far."""
        self._hashes: list[bytes] = []
        self.total = 0
        """Bytes of the chunks signed so far."""

    @property
    def count(self) -> int:
        """Chunks signed so far."""
        return len(self._hashes)

    def take(self, cut: Cut) -> ChunkStatement | None:
        """Hash ``cut``'s bytes into its chunk; the chunk's signed statement if it ends it."""
        data, offset, index, ends = cut  # unpacked: this runs per part
        if offset != self._written or index != len(self._hashes):
            raise ValueError(
                f"chunk part at {index}:{offset}, expected {len(self._hashes)}:{self._written}"
            )
        if data:
            self._hash.update(data)
            self._written += len(data)
        if not ends:
            return None
        digest, size = self._hash.digest(), self._written
        self._hash, self._written = hashlib.sha256(), 0
        if not size:
            raise MalformedMessage(f"chunk {index} is empty")
        statement = self._head.statement_of(self._key, index, size, digest)
        self._hashes.append(digest)
        self.total += size
        return statement

    def seal(self) -> Seal:
        """The seal over every chunk signed, once the body has ended (no part pending)."""
        if self._written:
            raise ValueError(f"chunk {len(self._hashes)} has parts but was not ended")
        return self._head.seal(self._key, self.total, self._hashes)
