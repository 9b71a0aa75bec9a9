"""How many tunnel bytes are paid for and how many have moved: pure state, ``now`` passed in.

A tunnel is paid in units of a fixed number of bytes, counted in both
directions together. The relay asks the meter before every write how much it
may send; the meter never grants past what was paid, so ``relayed <=
paid_bytes`` holds at every instant, and it remembers when the paid bytes ran
out (the pay deadline) and when bytes last moved (the idle deadline).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TunnelMeter:
    unit: int
    paid_units: int
    relayed: int
    last_activity: float
    """When bytes last moved (or the tunnel opened)."""
    exhausted_since: float | None = None
    """When the paid bytes ran out, while they stay out."""

    @classmethod
    def opened(cls, unit: int, units: int, now: float) -> TunnelMeter:
        if unit <= 0 or units <= 0:
            raise ValueError("a tunnel opens with at least one unit of a positive size")
        return cls(unit, units, 0, now)

    @property
    def paid_bytes(self) -> int:
        return self.paid_units * self.unit

    @property
    def available(self) -> int:
        return self.paid_bytes - self.relayed

    def credit(self, units: int) -> None:
        if units <= 0:
            raise ValueError("credit at least one unit")
        self.paid_units += units
        self.exhausted_since = None

    def take(self, wanted: int, now: float) -> int:
        """Grant up to ``wanted`` bytes of what is paid and not yet relayed; count them."""
        granted = min(wanted, self.available)
        if granted > 0:
            self.relayed += granted
            self.last_activity = now
        if self.available == 0 and self.exhausted_since is None:
            self.exhausted_since = now
        return granted

    def expired(self, now: float, pay_timeout: float, idle_timeout: float) -> str | None:
        """Why the tunnel must close now (``"unpaid"`` or ``"idle"``), or None."""
        if self.exhausted_since is not None and now - self.exhausted_since >= pay_timeout:
            return "unpaid"
        if now - self.last_activity >= idle_timeout:
            return "idle"
        return None
