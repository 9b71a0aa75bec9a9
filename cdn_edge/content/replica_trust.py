"""What providers an edge did not configure can lock up or take when it replicates.

An edge asked for content it does not hold pays the providers its trackers list,
from its own wallet (:mod:`cdn_edge.content.replication`). Anyone can announce signed
provider records for any content id, each naming a fresh payee, and answer 402
with a valid quote. So the edge trusts the providers it was configured with (its
``--tracker`` edges) and tries them first; every other provider is on probation
for each content, as in a requester's download (:mod:`requester.provider_trust`):
one probation attempt at a time, at most one chunk's price signed before a chunk
from it verifies, and a channel to its payee only while the content's allowance
(``replica_unknown_channels``) lasts, with ``replica_unknown_deposit``.

Contents cost an attacker nothing to invent, so the edge also bounds such channels
for all contents together: ``replica_unknown_channels_per_hour`` over any sliding
hour. A payee the edge holds a channel with room on costs nothing from either
allowance, so providers that delivered before stay usable when the budget is spent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cdn_edge.config import EdgeConfig
from requester.channel_manager import NewChannelAllowance, NewChannelRefused
from requester.chunk_client import Payer
from requester.chunk_payer import give_credit, take_credit
from requester.protocol import CreditSpend, Quote, Voucher
from requester.provider_trust import ProviderTrust, TrustPolicy

log = logging.getLogger(__name__)
TRUST_TTL = 3600.0
"""Seconds a content's view of its providers lasts; then the dropped get one more chance."""
MAX_CONTENTS = 1024
"""Contents whose provider views are kept (least recently used go first)."""


class HourlyChannels:
    """The edge-wide budget: new channels to unknown payees over any sliding ``window``."""

    def __init__(self, per_window: int, window: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.per_window = per_window
        self._window = window
        self._clock = clock
        self._taken: deque[float] = deque()

    def take(self) -> float | None:
        """Reserve one channel now if the window has room (before any ``await``): the
        reservation's time, or None."""
        now = self._clock()
        while self._taken and self._taken[0] <= now - self._window:
            self._taken.popleft()
        if len(self._taken) >= self.per_window:
            return None
        self._taken.append(now)
        return now

    def give_back(self, taken: float) -> None:
        """A reservation that opened nothing (a channel with room was paid instead)."""
        if taken in self._taken:
            self._taken.remove(taken)


class ReplicaPayer:
    """The edge's channels, with the per-content allowance drawn from the hourly budget too."""

    def __init__(self, channels: Payer, hourly: HourlyChannels) -> None:
        self._channels = channels
        self._hourly = hourly

    async def pay(self, quote: Quote, cost: int, now: int,
                  allowance: NewChannelAllowance | None = None) -> Voucher:  # fmt: skip
        if allowance is None:  # a configured peer, or a provider that delivered this content
            return await self._channels.pay(quote, cost, now)
        has_room = allowance.channels > 0
        reserved = self._hourly.take() if has_room else None
        if reserved is not None:
            allowance.channels -= 1
        grant = NewChannelAllowance(0 if reserved is None else 1, allowance.deposit)
        try:
            return await self._channels.pay(quote, cost, now, grant)
        except NewChannelRefused as exc:
            if has_room:
                log.info("no new channel to %s: the hourly budget is used up", quote.payee)
            which = (
                f"the edge's allowance of {self._hourly.per_window} such channels per hour "
                "(--replica-unknown-channels-per-hour)"
                if has_room
                else "this content's allowance for such channels (--replica-unknown-channels)"
            )
            raise NewChannelRefused(
                f"paying {quote.payee} would lock funds with a provider that has not "
                f"delivered yet, and {which} is used up"
            ) from exc
        finally:
            if reserved is not None and grant.channels:  # unused: a channel with room paid
                allowance.channels += 1
                self._hourly.give_back(reserved)

    def credit_spend(self, channel_id: bytes, content_id: bytes, index: int,
                     now: int) -> CreditSpend:  # fmt: skip
        return self._channels.credit_spend(channel_id, content_id, index, now)

    def take_credit(self, channel_id: bytes) -> int:
        """Credit the edge left with a sibling before it last stopped (``payer.sqlite3``)."""
        return take_credit(self._channels, channel_id)

    def leave_credit(self, channel_id: bytes, amount: int) -> None:
        give_credit(self._channels, channel_id, amount)


@dataclass
class ContentTrust:
    """One content's view of its providers, and the lock that keeps probation one at a time."""

    trust: ProviderTrust
    made: float
    probation: asyncio.Lock = field(default_factory=asyncio.Lock)


class ReplicaTrust:
    """The edge's configured peers, the edge-wide budget and each content's provider view."""

    def __init__(self, known: Iterable[str], policy: TrustPolicy, per_hour: int,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._known = {url.rstrip("/") for url in known}
        self.policy = policy
        self.hourly = HourlyChannels(per_hour, clock=clock)
        self._clock = clock
        self._contents: OrderedDict[bytes, ContentTrust] = OrderedDict()

    @classmethod
    def for_edge(cls, config: EdgeConfig) -> ReplicaTrust:
        policy = TrustPolicy(config.replica_unknown_channels, config.replica_unknown_deposit)
        return cls(config.trackers, policy, config.replica_unknown_channels_per_hour)

    def payer(self, channels: Payer) -> ReplicaPayer:
        return ReplicaPayer(channels, self.hourly)

    def known(self, url: str) -> bool:
        return url.rstrip("/") in self._known

    def ranked(self, urls: Iterable[str]) -> list[str]:
        """Configured peers first, then the others in the trackers' order."""
        listed = list(urls)
        return [u for u in listed if self.known(u)] + [u for u in listed if not self.known(u)]

    def content(self, content_id: bytes) -> ContentTrust:
        """The view of ``content_id``'s providers, made afresh after ``TRUST_TTL``."""
        now = self._clock()
        found = self._contents.get(content_id)
        if found is not None and now - found.made < TRUST_TTL:
            self._contents.move_to_end(content_id)
            return found
        found = ContentTrust(ProviderTrust(self._known, self.policy), now)
        self._contents[content_id] = found
        self._contents.move_to_end(content_id)
        while len(self._contents) > MAX_CONTENTS:
            self._contents.popitem(last=False)
        return found
