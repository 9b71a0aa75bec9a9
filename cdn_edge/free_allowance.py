"""A small free allowance per requester, so paying is never required to get started.

Each requester (by client address) may take ``budget`` bytes per ``window``
seconds without paying, as BitTorrent Speed keeps a share for free peers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FreeAllowance:
    budget: int
    window: float
    _used: dict[str, tuple[float, int]] = field(default_factory=dict)

    def take(self, requester: str, size: int, now: float) -> bool:
        """Spend ``size`` bytes of ``requester``'s allowance if enough is left."""
        if self.budget <= 0:
            return False
        start, used = self._used.get(requester, (now, 0))
        if now - start >= self.window:
            start, used = now, 0
        if used + size > self.budget:
            self._used[requester] = (start, used)
            return False
        self._used[requester] = (start, used + size)
        if len(self._used) > 100_000:
            self._forget(now)
        return True

    def left(self, requester: str, now: float) -> int:
        """Bytes ``requester`` may still take in the current window (without taking them)."""
        if self.budget <= 0:
            return 0
        start, used = self._used.get(requester, (now, 0))
        return self.budget if now - start >= self.window else max(0, self.budget - used)

    def _forget(self, now: float) -> None:
        for key in [k for k, (start, _) in self._used.items() if now - start >= self.window]:
            del self._used[key]
