"""One piece of content as the edge serves it: live, complete, or a partial replica.

Chunk requests for a live fetch wait here for the chunk they want instead of
failing, which is what lets a requester start before the origin has finished.
A replica (content another edge fetched) fills in chunk by chunk, on demand.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from requester.errors import Refusal
from requester.protocol import ManifestHead, Seal


@dataclass
class ContentEntry:
    head: ManifestHead
    head_bytes: bytes
    statements: dict[int, bytes] = field(default_factory=dict)
    """Encoded chunk statements this edge holds, by index."""
    hashes: dict[int, bytes] = field(default_factory=dict)
    seal_bytes: bytes | None = None
    error: Refusal | None = None
    providers: tuple[str, ...] = ()
    """For a replica: where the missing chunks can be fetched. Empty for own content."""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def content_id(self) -> bytes:
        return self.head.content_id

    @property
    def is_replica(self) -> bool:
        return bool(self.providers)

    @property
    def done(self) -> bool:
        """No more chunks will arrive by themselves (sealed own content, or failed)."""
        return self.error is not None or (self.seal_bytes is not None and not self.is_replica)

    @property
    def seal(self) -> Seal | None:
        return self.head.verify_seal(self.seal_bytes) if self.seal_bytes else None

    def past_end(self, index: int) -> bool:
        seal = self.seal
        return seal is not None and index >= seal.chunk_count

    def add_chunk(self, index: int, statement: bytes, sha256: bytes) -> None:
        if self.error is not None:
            return  # a store that finished after the failure: its chunk is never served
        self.statements[index] = statement
        self.hashes[index] = sha256
        self._notify()

    def finish(self, seal: bytes) -> None:
        self.seal_bytes = seal
        self._notify()

    def fail(self, error: Refusal) -> None:
        """The content ends with ``error``, the answer to every request for it from now on.

        Nothing else of it is kept: not its chunk statements (a 4 GiB body that failed
        held 16,384 of them, ~7 MB, for as long as the entry stayed cached), nor the
        frames and buffers the error's traceback and causes pointed to.
        """
        error.__traceback__ = error.__cause__ = error.__context__ = None
        self.error = error
        self.statements, self.hashes = {}, {}
        self._notify()

    async def wait_for(self, index: int) -> bool:
        """Wait until chunk ``index`` is held or the content ends; True if held.

        Callers bound the wait with ``asyncio.timeout``.
        """
        while index not in self.statements and not self.done and not self.past_end(index):
            await self._changed.wait()
        return index in self.statements

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()
