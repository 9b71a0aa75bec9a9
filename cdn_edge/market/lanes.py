"""Which waiting chunk request goes next, and when: the market's lanes over one link.

Pure state, ``now`` passed in (the async pacer in :mod:`cdn_edge.market.pacer` sleeps
and wakes requests). The link carries ``capacity`` bytes/s, cut into ``slots``:

- one *paid lane* per winner of the round, weight 1 (one slot), holding its
  requests that carry payment;
- the *free lane*, weight ``slots`` minus the paid lanes that have work waiting
  (so an unused paid slot joins it), shared round-robin, one chunk at a time,
  by the addresses with a request waiting (winners included).

Lanes take turns by start-time fair queueing: each lane's tag advances by
``size / weight`` per grant and the lane with the lowest tag goes next. A winner's
paying request waits in both its paid lane and its address's free queue and is
granted by whichever comes first, so a winner gets its paid slot on top of its
free share. Grants are paced: each one pushes ``free_at`` on by ``size /
capacity``, so the edge never sends above its capacity (beyond one chunk). The
queues hold requests, never bytes: memory is bounded by the requests in flight.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

FREE = "free"
PAID = "paid"


@dataclass(eq=False)
class Ticket:
    """One request waiting to send ``size`` bytes: from ``address`` (its free-lane queue)
    and, if ``payer`` is set, through that payer's paid slot too."""

    address: str
    size: int
    payer: str | None = None
    lane: str | None = None
    """Set when granted: :data:`PAID` or :data:`FREE`."""


@dataclass
class Lanes:
    """The waiting requests of one edge, by lane, and the link's pacing."""

    capacity: int
    slots: int
    winners: frozenset[str] = frozenset()
    slack: float = 0.0
    """Seconds of sending a late grant may catch up on (a pacer's wake-ups are late)."""
    free_at: float = 0.0
    """The link is busy with granted bytes until then; the next grant waits for it."""
    _paid: dict[str, deque[Ticket]] = field(default_factory=dict)
    _free: dict[str, deque[Ticket]] = field(default_factory=dict)
    _turns: deque[str] = field(default_factory=deque)
    """Addresses with a free-lane request waiting, in round-robin order."""
    _tags: dict[str, float] = field(default_factory=dict)
    """Each lane's finish tag (``""`` is the free lane, else the payer's paid lane)."""
    _vtime: float = 0.0

    def add(self, ticket: Ticket) -> None:
        """Queue ``ticket``; a payer that is not a winner now waits in the free lane only."""
        if ticket.payer is not None and ticket.payer in self.winners:
            self._paid.setdefault(ticket.payer, deque()).append(ticket)
        queue = self._free.get(ticket.address)
        if queue is None:
            queue = self._free[ticket.address] = deque()
            self._turns.append(ticket.address)
        queue.append(ticket)

    def remove(self, ticket: Ticket) -> None:
        """Forget a ticket that is no longer waiting (its request went away)."""
        self._drop(ticket)

    def set_winners(self, winners: frozenset[str]) -> None:
        """A new round: paid lanes of payers that no longer win wait in the free lane only."""
        self.winners = winners
        for payer in [p for p in self._paid if p not in winners]:
            del self._paid[payer]
        self._tags = {k: v for k, v in self._tags.items() if not k or k in winners}

    @property
    def waiting(self) -> bool:
        return bool(self._turns)

    def active(self) -> frozenset[str]:
        """Addresses with a request waiting."""
        return frozenset(self._turns)

    def grant(self, now: float) -> Ticket | None:
        """The next ticket to send if the link is free at ``now`` (None: wait or nothing)."""
        if not self._turns or now < self.free_at:
            return None
        busy = [p for p, q in self._paid.items() if q]
        weight = {p: 1.0 for p in busy}
        weight[""] = float(self.slots - len(busy))
        start = {k: max(self._vtime, self._tags.get(k, 0.0)) for k in weight}
        lane = min(weight, key=lambda k: (start[k], k != "", k))  # free lane first on a tie
        ticket = self._free[self._turns[0]][0] if lane == "" else self._paid[lane][0]
        self._vtime = start[lane]
        self._tags[lane] = start[lane] + ticket.size / weight[lane]
        ticket.lane = FREE if lane == "" else PAID
        self._drop(ticket)
        if lane == "" and self._turns and self._turns[0] == ticket.address:
            self._turns.rotate(-1)  # one chunk per turn: the address goes to the back
        self.free_at = max(self.free_at, now - self.slack) + ticket.size / self.capacity
        return ticket

    def _drop(self, ticket: Ticket) -> None:
        paid = self._paid.get(ticket.payer or "")
        if paid is not None and ticket in paid:
            paid.remove(ticket)
        queue = self._free.get(ticket.address)
        if queue is not None and ticket in queue:
            queue.remove(ticket)
            if not queue:
                del self._free[ticket.address]
                self._turns.remove(ticket.address)
