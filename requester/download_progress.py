"""What a download has done so far, per provider: chunks, bytes by lane, what was paid.

The scheduler (:mod:`requester.downloader`) fills it in as chunks arrive; ``atlas
fetch --json``, its progress line and the proxy's status page read it
(:meth:`requester.client.Download.provider_summary`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

MIB = 1 << 20


@dataclass
class ProviderStats:
    chunks: int = 0
    raced: int = 0
    """Of its ``chunks``, those another provider had delivered first (a straggler raced):
    paid, and thrown away."""
    requests: int = 0
    """Requests that asked it for chunks: one per chunk, or one per run of chunks."""
    bytes: int = 0
    paid: int = 0
    """Vouchers signed to it in this download (what it may redeem, credit included)."""
    dropped: str | None = None
    evidence: dict[str, str] = field(default_factory=dict)
    paid_bytes: int = 0
    """Wire bytes it served through a paid slot (or charged for, at an edge without a market)."""
    free_bytes: int = 0
    charged: int = 0
    """What it charged for the paid bytes (``Atlas-Price``, summed)."""
    first_asked: float | None = None
    last_delivered: float | None = None
    wants_payment: bool = False
    """Dropped because it serves nothing more unpaid and this download could not pay it."""

    @property
    def lane(self) -> str | None:
        """``paid``, ``free`` or ``mixed`` (both lanes served it); None before any chunk."""
        if self.paid_bytes and self.free_bytes:
            return "mixed"
        return "paid" if self.paid_bytes else "free" if self.free_bytes else None

    @property
    def price_per_mib_paid(self) -> int | None:
        """Base units it charged per MiB of paid bytes (None: nothing paid)."""
        return self.charged * MIB // self.paid_bytes if self.paid_bytes else None

    @property
    def rate(self) -> float:
        """Bytes/s it delivered, from its first request to its last chunk."""
        if self.first_asked is None or self.last_delivered is None:
            return 0.0
        return self.bytes / max(self.last_delivered - self.first_asked, 1e-3)


@dataclass
class Progress:
    delivered_bytes: int = 0
    started: float = field(default_factory=time.monotonic)
    providers: dict[str, ProviderStats] = field(default_factory=dict)

    @property
    def paid(self) -> int:
        return sum(p.paid for p in self.providers.values())
