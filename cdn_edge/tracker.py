"""Every edge is also a tracker: who provides which content, for a while.

Records are signed by the providers themselves (``ProviderRecord``) and
checked on arrival; the tracker keeps the latest unexpired record per
(content, provider), with caps so announcements cannot fill its memory. Version 2
records carry the provider's market terms; the latest is the one that expires last.
"""

from __future__ import annotations

from collections import OrderedDict

from requester.protocol import ProviderRecord

MAX_TTL = 3600
MAX_PROVIDERS_PER_CONTENT = 64
MAX_CONTENTS = 100_000


class Tracker:
    def __init__(self) -> None:
        self._records: OrderedDict[bytes, dict[bytes, ProviderRecord]] = OrderedDict()

    def add(self, record: ProviderRecord, now: int) -> bool:
        """Keep a verified record; False if it is expired, too far in the future, or older
        than the one held for its provider (a replayed record must not bring back an old
        price or URL: each announce expires later than the one before)."""
        if not now < record.expires_at <= now + MAX_TTL:
            return False
        held = self._records.get(record.content_id, {}).get(record.node_id.raw)
        if held is not None and held.expires_at > record.expires_at:
            return False
        providers = self._records.setdefault(record.content_id, {})
        self._records.move_to_end(record.content_id)
        providers[record.node_id.raw] = record
        if len(providers) > MAX_PROVIDERS_PER_CONTENT:
            oldest = min(providers.values(), key=lambda r: r.expires_at)
            del providers[oldest.node_id.raw]
        while len(self._records) > MAX_CONTENTS:
            self._records.popitem(last=False)
        return True

    def providers(self, content_id: bytes, now: int) -> list[ProviderRecord]:
        providers = self._records.get(content_id, {})
        for key in [k for k, r in providers.items() if r.expires_at <= now]:
            del providers[key]
        return sorted(providers.values(), key=lambda r: -r.expires_at)
