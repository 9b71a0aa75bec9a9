"""The local faucet's bounds: who may use it, and how much it gives per minute.

The faucet mints local BTT for a local network (``atlas up`` funds its wallet and its
edges with it). Unbounded, any process that can reach the ledger could mint without
end (2,000,000 BTT in 0.8 s), and every grant is a row on disk. So:

- only clients on this machine may use it: the TCP peer is a loopback address and the
  request carries no ``Forwarded``/``X-Forwarded-For``/``X-Real-IP`` header (a reverse
  proxy on this machine would make every stranger look local);
- over any sliding minute it gives at most ``per_address`` to one address,
  ``per_minute`` in all and ``grants_per_minute`` grants in all; a request past a bound
  is refused with ``429 faucet_limit`` and ``Retry-After`` (the seconds until it fits).

Every request that passes the other checks counts, a replayed ``request_id`` included.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address

from requester.errors import ServiceRefusal
from requester.protocol import BTT_LOCAL, format_amount

WINDOW = 60.0
"""Seconds the bounds are measured over."""
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


@dataclass(frozen=True)
class FaucetLimits:
    per_grant: int = 1000 * BTT_LOCAL.one
    """Largest single grant, in base units."""
    per_address: int = 2000 * BTT_LOCAL.one
    """Base units one address may get per minute."""
    per_minute: int = 100_000 * BTT_LOCAL.one
    """Base units all addresses together may get per minute."""
    grants_per_minute: int = 1000

    def __post_init__(self) -> None:
        if not 0 < self.per_grant <= self.per_address <= self.per_minute:
            raise ValueError("faucet limits need 0 < per grant <= per address <= per minute")
        if self.grants_per_minute < 1:
            raise ValueError("the faucet must allow at least one grant per minute")


class FaucetLimited(ServiceRefusal):
    """A grant over one of the faucet's per-minute bounds; nothing was minted."""

    status = 429
    code = "faucet_limit"

    def __init__(self, message: str, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"{message}; retry in {self.retry_after} s")


def is_local_request(remote: str | None, headers: Mapping[str, str]) -> bool:
    """Whether a request comes from this machine: a loopback peer, not forwarded."""
    if remote is None:
        return False
    try:
        ip = ip_address(remote)
    except ValueError:
        return False
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback and not any(h in headers for h in FORWARDING_HEADERS)


def _wait(grants: deque[tuple[float, int]], held: int, cap: int, want: int, now: float) -> float:
    """Seconds until ``held + want <= cap`` as the oldest ``(time, amount)`` grants expire."""
    for at, amount in grants:
        held -= amount
        if held + want <= cap:
            return at + WINDOW - now
    return WINDOW


class FaucetMeter:
    """What the faucet gave over the last minute, overall and per address.

    Holds one entry per grant in the window, so at most ``grants_per_minute`` of them,
    whatever addresses are asked for.
    """

    def __init__(self, limits: FaucetLimits) -> None:
        self.limits = limits
        self._grants: deque[tuple[float, str, int]] = deque()
        self._by_address: dict[str, deque[tuple[float, int]]] = {}
        self._total = 0

    def take(self, address: str, amount: int, now: float) -> None:
        """Count a grant of ``amount`` to ``address``, or raise :class:`FaucetLimited`."""
        self._expire(now)
        limits = self.limits
        mine = self._by_address.get(address, deque())
        given = sum(a for _, a in mine)
        if given + amount > limits.per_address:
            raise FaucetLimited(
                f"the faucet gives one address at most {_btt(limits.per_address)} per minute; "
                f"{address} got {_btt(given)} in the last minute",
                _wait(mine, given, limits.per_address, amount, now),
            )
        if self._total + amount > limits.per_minute:
            overall = deque((at, a) for at, _, a in self._grants)
            raise FaucetLimited(
                f"the faucet gives at most {_btt(limits.per_minute)} per minute in all",
                _wait(overall, self._total, limits.per_minute, amount, now),
            )
        if len(self._grants) >= limits.grants_per_minute:
            raise FaucetLimited(
                f"the faucet makes at most {limits.grants_per_minute} grants per minute",
                self._grants[0][0] + WINDOW - now,
            )
        self._grants.append((now, address, amount))
        self._by_address.setdefault(address, deque()).append((now, amount))
        self._total += amount

    def _expire(self, now: float) -> None:
        while self._grants and self._grants[0][0] <= now - WINDOW:
            _, address, amount = self._grants.popleft()
            self._total -= amount
            mine = self._by_address[address]
            mine.popleft()
            if not mine:
                del self._by_address[address]


def _btt(units: int) -> str:
    return format_amount(units, BTT_LOCAL)
