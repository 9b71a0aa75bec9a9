"""What one download knows of each provider: what it served and was paid, and why it left.

Split from :mod:`requester.downloader`, whose workers ask the providers for chunks; this
holds the bookkeeping they report to, with no I/O. A provider that lies or fails is
dropped with the first reason and evidence; one that refuses or resets connections after
it served is asked again with backoff (:mod:`requester.provider_backoff`); the answers a
``--json`` summary and a failed download's message are made of are kept here.
"""

from __future__ import annotations

import time

from requester.bidding import Bidding
from requester.chunk_client import (
    ChunkClient,
    ContentFailed,
    Delivered,
    PaymentRefused,
    ProviderFault,
    ProviderUnreachable,
)
from requester.download_progress import Progress, ProviderStats
from requester.provider_backoff import ProviderBackoff
from requester.provider_choice import ProviderChoice
from requester.provider_trust import ProviderTrust


class ProviderBook:
    """Each provider's record in one download, and the choices and backoff built on it."""

    def __init__(self, providers: list[str], client: ChunkClient, trust: ProviderTrust | None,
                 market: Bidding | None) -> None:  # fmt: skip
        self.progress = Progress(providers={p: ProviderStats() for p in providers})
        self.origin_edge = providers[0] if providers else None
        """The edge the content was asked from: it signed the head and seals it."""
        self.choice = market.choice if market is not None else ProviderChoice()
        """Which providers are known; without a market, every provider is paid as a known one."""
        self.backoff = ProviderBackoff()
        """Providers whose connection was refused or reset: asked again later, not dropped."""
        self.trust = trust
        self.last_unavailable = ""
        """The last "not here (yet)" answer, for the message when no provider is left."""
        self._client = client
        self._signed_before = dict(client.signed)

    def live(self) -> int:
        """Providers not dropped (at least 1, to divide by)."""
        return max(1, sum(1 for s in self.progress.providers.values() if s.dropped is None))

    def took(self, provider: str, delivered: Delivered) -> None:
        """``provider`` delivered a verified chunk: its counts and what it was paid."""
        stats = self.progress.providers[provider]
        stats.chunks += 1
        stats.bytes += delivered.wire_bytes
        stats.last_delivered = time.monotonic()
        if delivered.lane == "paid":
            stats.paid_bytes += delivered.wire_bytes
            stats.charged += delivered.price
        else:
            stats.free_bytes += delivered.wire_bytes
        self.sync_paid()

    def sync_paid(self) -> None:
        """What each provider was paid in this download: vouchers signed, delivered or not."""
        for provider, stats in self.progress.providers.items():
            signed = self._client.signed.get(provider, 0)
            stats.paid = signed - self._signed_before.get(provider, 0)

    def fault(self, provider: str, exc: ProviderFault) -> bool:
        """Drop ``provider`` for ``exc``; whether it is the origin edge saying the content
        failed (then no chunk past the failure exists anywhere)."""
        stats = self.progress.providers[provider]
        self.choice.failed(provider)
        if stats.dropped is None:  # the first fault is the reason and the evidence: a
            # sibling worker's later "dropped earlier in this download" must not hide it
            stats.dropped, stats.evidence = exc.reason, exc.evidence
            stats.wants_payment = isinstance(exc, PaymentRefused)
        return isinstance(exc, ContentFailed) and provider == self.origin_edge

    def unreachable(self, provider: str, exc: ProviderUnreachable) -> None:
        """Back off from a refused or reset connection; drop the provider only when it never
        served this download (a dead address: no 30 s wait) or stays unreachable too long."""
        stats = self.progress.providers[provider]
        self.choice.failed(provider)
        now = time.monotonic()
        again = self.backoff.failed(provider, now, exc.reason) and stats.chunks > 0
        if not again and stats.dropped is None:
            stats.dropped = self.backoff.describe(provider, now)
            if self.trust is not None:
                self.trust.drop(provider)

    def note_unreachable(self) -> None:
        """Providers still unreachable as the download ends are reported dropped."""
        now = time.monotonic()
        for provider in self.backoff.failing():
            stats = self.progress.providers.get(provider)
            if stats is not None and stats.dropped is None:
                stats.dropped = self.backoff.describe(provider, now)

    def why_no_providers(self) -> str:
        reasons = [f"{p}: {s.dropped}" for p, s in self.progress.providers.items() if s.dropped]
        if self.last_unavailable:
            reasons.append(f"last answer: {self.last_unavailable}")
        return "no provider could serve it: " + ("; ".join(reasons) or "none answered")
