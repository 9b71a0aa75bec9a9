"""The edge's lanes on a fake clock: paid slots, the round-robin free lane, the capacity.

Each simulated requester keeps a few chunk requests waiting (as the SDK keeps
requests in flight); every grant is answered at once by a new request, and the
clock jumps to when the link is free. Rates are compared with the mechanism's
own :func:`requester.protocol.auction.shares`.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from cdn_edge.market.lanes import FREE, PAID, Lanes, Ticket
from requester.protocol.auction import Bid, clear, shares

MIB = 1 << 20
CHUNK = 256 * 1024
CAPACITY = 4 * MIB


def simulate(lanes: Lanes, requesters: dict[str, str | None], seconds: float,
             keep: int = 4, size: int = CHUNK) -> Counter[tuple[str, str]]:  # fmt: skip
    """Bytes granted per (address, lane) over ``seconds`` to ``requesters`` (address ->
    payer or None), each keeping ``keep`` requests waiting."""
    for address, payer in requesters.items():
        for _ in range(keep):
            lanes.add(Ticket(address, size, payer))
    sent: Counter[tuple[str, str]] = Counter()
    now = 0.0
    while now < seconds:
        ticket = lanes.grant(now)
        if ticket is None:
            now = lanes.free_at
            continue
        assert ticket.lane is not None
        sent[(ticket.address, ticket.lane)] += ticket.size
        lanes.add(Ticket(ticket.address, ticket.size, ticket.payer))
    return sent


def rate(sent: Counter[tuple[str, str]], address: str, seconds: float,
         lane: str | None = None) -> float:  # fmt: skip
    total = sum(n for (a, ln), n in sent.items() if a == address and lane in (None, ln))
    return total / seconds


def test_a_winner_gets_its_paid_slot_plus_a_free_share_at_the_mechanism_s_rates() -> None:
    bids = [Bid("A", 5, 1, True), Bid("B", 2, 2, True)]
    clearing = clear(bids, slots=4, free_slots=3, reserve=1)  # one paid slot: A wins at 2
    assert clearing.winners == ("A",) and clearing.price == 2
    lanes = Lanes(CAPACITY, 4, frozenset(clearing.winners))
    seconds = 60.0
    sent = simulate(lanes, {"10.0.0.1": "A", "10.0.0.2": "B", "10.0.0.3": None}, seconds)
    want = shares(clearing, ["10.0.0.1", "10.0.0.2", "10.0.0.3"], CAPACITY)
    for address, payer in (("10.0.0.1", "A"), ("10.0.0.2", "B"), ("10.0.0.3", None)):
        expected = float(want.rate(address, payer))
        assert abs(rate(sent, address, seconds) - expected) <= 0.02 * expected, address
    assert abs(rate(sent, "10.0.0.1", seconds, PAID) - CAPACITY / 4) <= 0.02 * CAPACITY / 4
    assert rate(sent, "10.0.0.2", seconds, PAID) == 0  # a loser pays for nothing
    assert sum(sent.values()) <= CAPACITY * seconds + CHUNK


def test_the_free_lane_is_round_robin_one_chunk_at_a_time() -> None:
    lanes = Lanes(CAPACITY, 8)
    addresses = [f"10.0.0.{i}" for i in range(1, 6)]
    for address in addresses:
        for _ in range(3):
            lanes.add(Ticket(address, CHUNK))
    order = []
    now = 0.0
    while lanes.waiting:
        ticket = lanes.grant(now)
        if ticket is None:
            now = lanes.free_at
            continue
        order.append(ticket.address)
        assert ticket.lane == FREE
    assert order == addresses * 3


def test_equal_free_requesters_get_equal_rates_and_the_whole_capacity() -> None:
    seconds = 30.0
    requesters: dict[str, str | None] = {f"10.0.1.{i}": None for i in range(1, 8)}
    sent = simulate(Lanes(CAPACITY, 8), requesters, seconds, keep=2)
    rates = [rate(sent, a, seconds) for a in requesters]
    assert max(rates) - min(rates) <= CHUNK / seconds  # within one chunk over the run
    assert abs(sum(rates) - CAPACITY) <= 0.01 * CAPACITY


def test_unused_paid_slots_join_the_free_lane() -> None:
    seconds = 30.0
    # Two winners hold paid slots, but only A has work: B's slot goes to the free lane.
    lanes = Lanes(CAPACITY, 4, frozenset({"A", "B"}))
    sent = simulate(lanes, {"10.0.0.1": "A", "10.0.0.2": None}, seconds)
    paid_a = rate(sent, "10.0.0.1", seconds, PAID)
    assert abs(paid_a - CAPACITY / 4) <= 0.02 * CAPACITY / 4
    free_each = (CAPACITY - CAPACITY / 4) / 2  # 3 slots: the free one and both unsold
    for address in ("10.0.0.1", "10.0.0.2"):
        assert abs(rate(sent, address, seconds, FREE) - free_each) <= 0.02 * free_each
    # No winner active at all: free requesters share the whole capacity.
    alone = simulate(Lanes(CAPACITY, 4, frozenset({"A", "B"})), {"10.0.0.3": None}, seconds)
    assert abs(rate(alone, "10.0.0.3", seconds) - CAPACITY) <= 0.01 * CAPACITY


def test_a_round_that_drops_a_winner_sends_its_requests_through_the_free_lane() -> None:
    lanes = Lanes(CAPACITY, 4, frozenset({"A"}))
    tickets = [Ticket("10.0.0.1", CHUNK, "A") for _ in range(3)]
    for waiting in tickets:
        lanes.add(waiting)
    lanes.set_winners(frozenset())
    granted = []
    now = 0.0
    while lanes.waiting:
        ticket = lanes.grant(now)
        if ticket is None:
            now = lanes.free_at
            continue
        granted.append(ticket)
    assert granted == tickets and {t.lane for t in granted} == {FREE}


def test_a_request_that_goes_away_is_never_granted() -> None:
    lanes = Lanes(CAPACITY, 4, frozenset({"A"}))
    gone, kept = Ticket("10.0.0.1", CHUNK, "A"), Ticket("10.0.0.2", CHUNK)
    lanes.add(gone)
    lanes.add(kept)
    lanes.remove(gone)
    assert lanes.active() == frozenset({"10.0.0.2"})
    assert lanes.grant(0.0) is kept and not lanes.waiting


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 5), st.integers(1, 6), st.sampled_from(["A", "B", None]),
            st.integers(1, 4 * CHUNK),
        ),
        min_size=1, max_size=60,
    ),
)  # fmt: skip
def test_the_edge_never_sends_above_its_capacity(
    arrivals: list[tuple[float, int, str | None, int]],
) -> None:
    """Whatever arrives, when: bytes granted by any time t stay within capacity x t (from
    the first grant) plus the chunk granted at t (1 byte of float rounding aside)."""
    lanes = Lanes(CAPACITY, 4, frozenset({"A"}))
    pending = sorted(arrivals, key=lambda a: a[0])
    now, first, granted = 0.0, None, 0
    while pending or lanes.waiting:
        while pending and pending[0][0] <= now:
            _, host, payer, size = pending.pop(0)
            lanes.add(Ticket(f"10.0.0.{host}", size, payer))
        ticket = lanes.grant(now)
        if ticket is None:
            later = [lanes.free_at] if lanes.waiting else []
            now = max(now, min(later + ([pending[0][0]] if pending else [])))
            continue
        first = now if first is None else first
        assert granted <= CAPACITY * (now - first) + 1
        granted += ticket.size
    assert granted == sum(a[3] for a in arrivals)


def test_the_rates_are_exact_fractions_of_the_mechanism() -> None:
    """The lane weights are the mechanism's: a paid slot is capacity / slots."""
    clearing = clear([Bid("A", 3, 1, True)], slots=8, free_slots=2, reserve=1)
    want = shares(clearing, ["x", "y"], CAPACITY)
    assert want.paid_slot == Fraction(CAPACITY, 8)
    sent = simulate(Lanes(CAPACITY, 8, frozenset({"A"})), {"x": "A", "y": None}, 40.0)
    assert abs(rate(sent, "x", 40.0) - float(want.rate("x", "A"))) <= 0.02 * float(
        want.rate("x", "A")
    )
