"""Content entries in memory, over the content index and its one db thread.

A live fetch or a replica is an entry the routes wait on (:class:`ContentEntry`), so
every request for it must find the same object: entries being filled are kept here
for as long as they fill, and the most recently served are kept too, so a hit does
not rebuild its statements from the index each time.

Every index call runs on the db thread (:meth:`Entries.run`): SQLite wants one
writer, and one thread keeps the order of the writes, so a chunk's row is stored
before the seal that counts it, and a content's rows before its eviction.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from cdn_edge.content.entry import ContentEntry
from cdn_edge.content.index import ContentIndex, StoredContent
from requester.protocol import ManifestHead

T = TypeVar("T")

ENTRY_CACHE = 512
"""Entries kept in memory, most recently used first (live ones are never evicted by
the index, but may leave this cache: requests already holding them keep them)."""


class Entries:
    def __init__(self, index: ContentIndex, db: ThreadPoolExecutor) -> None:
        self.index = index
        self._db = db
        self._entries: OrderedDict[bytes, ContentEntry] = OrderedDict()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on the db thread, in the order of the calls."""
        return await asyncio.get_running_loop().run_in_executor(self._db, partial(fn, *args))

    def on_db_thread(self, fn: Callable[[], None]) -> asyncio.Future[None]:
        """Queue ``fn`` on the db thread behind the writes already queued."""
        return asyncio.get_running_loop().run_in_executor(self._db, fn)

    def get(self, content_id: bytes) -> ContentEntry | None:
        """The entry in memory for ``content_id``, marked as just used, or None."""
        cached = self._entries.get(content_id)
        if cached is not None:
            self._entries.move_to_end(content_id)
        return cached

    async def load(self, stored: StoredContent) -> ContentEntry:
        """The entry for stored content: the one in memory, else rebuilt from the index."""
        cached = self._entries.get(stored.content_id)
        if cached is not None:
            return cached
        head = ManifestHead.decode(stored.head)
        entry = ContentEntry(head, stored.head)
        for index, sha256, statement in await self.run(self.index.statements, stored.content_id):
            entry.statements[index] = statement
            entry.hashes[index] = sha256
        if stored.seal is not None:
            entry.seal_bytes = stored.seal
        return self.keep(entry)

    def remember(self, entry: ContentEntry) -> None:
        self._entries[entry.content_id] = entry
        self._entries.move_to_end(entry.content_id)
        while len(self._entries) > ENTRY_CACHE:
            self._entries.popitem(last=False)

    def keep(self, entry: ContentEntry) -> ContentEntry:
        """The entry in memory for ``entry``'s id if another request put one there while
        this one awaited the index (requests may already wait on that one), else ``entry``;
        remembered either way. Two entries for one id would split its chunks between them."""
        kept = self._entries.get(entry.content_id, entry)
        self.remember(kept)
        return kept

    def live_ids(self) -> list[bytes]:
        """Ids of the entries still filling (a live fetch, a replica, not failed)."""
        return [e.content_id for e in self._entries.values() if not e.done]

    async def held_ids(self) -> list[bytes]:
        """Ids of all content this edge can serve (sealed in the store, or live)."""
        stored = await self.run(self.index.content_ids)
        return stored + self.live_ids()

    async def persist_seal(self, entry: ContentEntry) -> None:
        """Store the entry's seal, once it has one (a replica's arrives with its head)."""
        seal = entry.seal
        if seal is not None and entry.seal_bytes is not None:
            await self.run(self.index.seal, entry.content_id, entry.seal_bytes, seal.total_size)

    async def evict_for(self, entry: ContentEntry) -> None:
        """Make room under the store's cap after ``entry`` sealed: never evict what is
        live, and forget the entries whose content went."""
        live = set(self.live_ids())
        if await self.run(self.index.evict, live | {entry.content_id}):
            for gone in set(self._entries) - set(await self.run(self.index.content_ids)) - live:
                del self._entries[gone]
