"""The slot auction (issue 16): the properties that make it a market free users can live with.

Each property runs 2000 hypothesis examples over small markets (up to 8 slots,
12 bids from 10 payers, prices and times in narrow ranges so ties and the
reserve's edge come up often). A requester's address is its payer id here, so
its rate is ``shares.rate(payer, payer)``.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from requester.protocol.assets import BTT
from requester.protocol.auction import UNLIMITED, Bid, Clearing, clear, shares

MIB = 1 << 20
MANY = settings(max_examples=2000, deadline=None)
PAYERS = [f"payer{n}" for n in range(10)]
FREE_RIDERS = ["free0", "free1", "free2"]
DEVIATIONS = [
    Fraction(0),
    Fraction(1, 2),
    Fraction(9, 10),
    Fraction(11, 10),
    Fraction(2),
    Fraction(50),
]


def _bid(code: int) -> Bid:
    """Spreads one integer over (payer, price 0..12, placed_at 0..3, covered 3 times in 4)."""
    code, payer = divmod(code, len(PAYERS))
    code, price = divmod(code, 13)
    code, placed_at = divmod(code, 4)
    return Bid(PAYERS[payer], price, placed_at, code % 4 != 0)


# 0..12 bids (uniformly many) drawn as one byte string, two bytes a bid: about twice as
# fast as a list of builds, which keeps 2000 examples a property within a second or so.
bids_st = (
    st.integers(0, 12)
    .flatmap(lambda n: st.binary(min_size=2 * n, max_size=2 * n))
    .map(
        lambda data: [_bid(int.from_bytes(data[i : i + 2], "big")) for i in range(0, len(data), 2)]
    )
)
MARKETS = [(s, f, r) for s in range(1, 9) for f in range(1, s + 1) for r in range(7)]
markets = st.sampled_from(MARKETS)
"""(slots, free_slots, reserve): up to 8 slots, at least one free, a reserve of 0..6."""


def best_eligible(bids: list[Bid], reserve: int) -> dict[str, Bid]:
    """Each payer's best eligible bid: the one it takes part with."""
    best: dict[str, Bid] = {}
    for bid in sorted(bids, key=Bid.rank_key):
        if bid.covered and bid.price_per_mib >= reserve:
            best.setdefault(bid.payer, bid)
    return best


def everyone(bids: list[Bid], free: int = 2) -> list[str]:
    return sorted({bid.payer for bid in bids} | set(FREE_RIDERS[:free]))


@MANY
@given(bids_st, markets)
def test_the_highest_eligible_bids_win(bids: list[Bid], market: tuple[int, int, int]) -> None:
    slots, free_slots, reserve = market
    outcome = clear(bids, slots, free_slots, reserve)
    best = best_eligible(bids, reserve)
    assert len(outcome.winners) == min(slots - free_slots, len(best))
    assert len(set(outcome.winners)) == len(outcome.winners)
    keys = [best[winner].rank_key() for winner in outcome.winners]
    assert keys == sorted(keys)
    for loser in set(best) - set(outcome.winners):
        assert all(key < best[loser].rank_key() for key in keys)
    assert outcome.unused_paid_slots == slots - free_slots - len(outcome.winners)


@MANY
@given(bids_st, markets)
def test_each_winner_pays_the_clearing_price_never_more_than_its_bid_and_losers_pay_nothing(
    bids: list[Bid], market: tuple[int, int, int]
) -> None:
    slots, free_slots, reserve = market
    outcome = clear(bids, slots, free_slots, reserve)
    best = best_eligible(bids, reserve)
    losing = [best[p].price_per_mib for p in best if p not in outcome.winners]
    expected = max([reserve, *losing]) if outcome.winners else reserve
    assert outcome.price == expected
    for winner in outcome.winners:
        assert outcome.price_for(winner) == outcome.price
        assert reserve <= outcome.price <= best[winner].price_per_mib
    for payer in {bid.payer for bid in bids} - set(outcome.winners):
        assert outcome.price_for(payer) == 0


@MANY
@given(bids_st, markets, st.integers(0, 12), st.booleans(), st.integers(0, 3))
def test_a_bid_under_the_reserve_or_not_covered_gets_the_free_share_and_pays_nothing(
    bids: list[Bid], market: tuple[int, int, int], price: int, covered: bool, placed_at: int
) -> None:
    slots, free_slots, reserve = market
    if covered:
        price = min(price, reserve - 1)
    if price < 0:
        return  # a reserve of 0: every covered bid is eligible
    outsider = Bid("outsider", price, placed_at, covered)
    outcome = clear([*bids, outsider], slots, free_slots, reserve)
    assert outcome == clear(bids, slots, free_slots, reserve)
    assert outcome.price_for("outsider") == 0
    rates = shares(outcome, ["outsider", *everyone(bids)], 8 * MIB)
    assert rates.rate("outsider", "outsider") == rates.free_share


@MANY
@given(
    bids_st, markets, st.integers(0, 12), st.integers(1, 12), st.integers(0, 3), st.integers(0, 3)
)
def test_raising_a_bid_never_lowers_that_requesters_rate(
    bids: list[Bid],
    market: tuple[int, int, int],
    price: int,
    rise: int,
    placed_at: int,
    placed_again: int,
) -> None:
    """Holds even if the raised bid is placed later: a strictly higher price outranks
    every bid the old one outranked. (A raise the deposit no longer covers is not a
    raise the auction sees: it is ineligible, and the edge says so.)"""
    slots, free_slots, reserve = market
    active = ["me", *everyone(bids)]

    def my_rate(bid: Bid) -> Fraction:
        outcome = clear([*bids, bid], slots, free_slots, reserve)
        return shares(outcome, active, 8 * MIB).rate("me", "me")

    before = my_rate(Bid("me", price, placed_at, True))
    assert my_rate(Bid("me", price + rise, placed_again, True)) >= before


@st.composite
def crowded_markets(draw: st.DrawFn) -> tuple[int, int, int, list[Bid]]:
    """A market and others' bids where at least as many other payers are eligible as there
    are paid slots ("more bidders than paid slots", counting the bidder under test)."""
    slots, free_slots, reserve = draw(markets)
    paid = slots - free_slots
    crowd = draw(st.binary(min_size=paid, max_size=paid + 2))
    eligible = [Bid(PAYERS[n], reserve + b % 13, b // 13 % 4, True) for n, b in enumerate(crowd)]
    return slots, free_slots, reserve, eligible + draw(bids_st)


@MANY
@given(
    crowded_markets(), st.integers(0, 20), st.integers(0, 3), st.integers(0, 100), st.integers(0, 3)
)
def test_no_deviation_from_ones_true_value_pays(
    market: tuple[int, int, int, list[Bid]], value: int, placed_at: int, other: int, free: int
) -> None:
    """Utility = value x rate - price x paid rate (per MiB prices, rates in bytes/s)."""
    slots, free_slots, reserve, others = market
    active = ["me", *everyone(others, free)]

    def utility(price: int) -> Fraction:
        outcome = clear([*others, Bid("me", price, placed_at, True)], slots, free_slots, reserve)
        rates = shares(outcome, active, 8 * MIB)
        paid_rate = rates.paid_slot if "me" in outcome.winners else 0
        return value * rates.rate("me", "me") - outcome.price_for("me") * paid_rate

    truthful = utility(value)
    for deviation in [int(value * factor) for factor in DEVIATIONS] + [other]:
        assert utility(deviation) <= truthful, deviation


@MANY
@given(bids_st, markets, st.integers(1, 10**12), st.integers(0, 3))
def test_rates_sum_to_capacity_and_everyone_gets_the_free_floor(
    bids: list[Bid], market: tuple[int, int, int], capacity: int, free: int
) -> None:
    slots, free_slots, reserve = market
    active = everyone(bids, free)
    if not active:
        return
    rates = shares(clear(bids, slots, free_slots, reserve), active, capacity)
    assert sum(rates.rate(address, address) for address in active) == capacity
    floor = Fraction(free_slots, slots) * capacity / len(active)
    assert all(rates.rate(address, address) >= floor for address in active)


@MANY
@given(
    st.binary(max_size=12).map(lambda data: [(PAYERS[b % 10], b // 10 % 4) for b in data]),
    markets,
    st.integers(0, 12),
)
def test_ties_go_to_the_earlier_bid_then_the_lower_payer_id(
    entries: list[tuple[str, int]], market: tuple[int, int, int], price: int
) -> None:
    slots, free_slots, reserve = market
    price = max(price, reserve)
    outcome = clear([Bid(p, price, t, True) for p, t in entries], slots, free_slots, reserve)
    earliest: dict[str, int] = {}
    for payer, placed_at in entries:
        earliest[payer] = min(placed_at, earliest.get(payer, placed_at))
    order = sorted(earliest, key=lambda payer: (earliest[payer], payer))
    assert list(outcome.winners) == order[: slots - free_slots]


@MANY
@given(bids_st, st.integers(0, 2**32), markets)
def test_the_outcome_does_not_depend_on_the_order_bids_arrive_in(
    bids: list[Bid], seed: int, market: tuple[int, int, int]
) -> None:
    slots, free_slots, reserve = market
    shuffled = list(bids)
    random.Random(seed).shuffle(shuffled)
    outcome = clear(bids, slots, free_slots, reserve)
    assert clear(shuffled, slots, free_slots, reserve) == outcome
    assert clear(bids, slots, free_slots, reserve) == outcome
    active = everyone(bids)
    assert shares(outcome, reversed(active), MIB) == shares(outcome, active, MIB)


def test_the_issues_worked_example() -> None:
    """Capacity 8 MiB/s, 8 slots, 2 free, reserve 1 BTT/MiB; 10 payers bid 1..10 BTT/MiB,
    2 requesters pay nothing: bids 5..10 win at 4, winners get 7/6 MiB/s, the rest 1/6."""
    btt = BTT.one
    bids = [Bid(f"bid{n}", n * btt, 0, True) for n in range(1, 11)]
    outcome = clear(bids, slots=8, free_slots=2, reserve=1 * btt)
    assert outcome.winners == ("bid10", "bid9", "bid8", "bid7", "bid6", "bid5")
    assert outcome.price == 4 * btt
    assert outcome.unused_paid_slots == 0
    active = [bid.payer for bid in bids] + ["free1", "free2"]
    rates = shares(outcome, active, 8 * MIB)
    for n in range(5, 11):
        assert rates.rate(f"bid{n}", f"bid{n}") == Fraction(7, 6) * MIB
        assert outcome.price_for(f"bid{n}") == 4 * btt
    for address in [f"bid{n}" for n in range(1, 5)] + ["free1", "free2"]:
        assert rates.rate(address, address) == Fraction(1, 6) * MIB >= 136 * 1024
        assert outcome.price_for(address) == 0
    assert sum(rates.rate(address, address) for address in active) == 8 * MIB


def test_unsold_slots_join_the_free_lane_and_the_price_is_the_reserve() -> None:
    outcome = clear([Bid("a", 9, 0, True), Bid("b", 2, 0, True)], slots=4, free_slots=1, reserve=3)
    assert outcome == Clearing(("a",), 3, 3, 4, 1)
    assert (outcome.unused_paid_slots, outcome.free_lane_slots) == (2, 3)
    rates = shares(outcome, ["a", "b"], 4000)
    assert (rates.rate("a", "a"), rates.rate("b", "b")) == (Fraction(2500), Fraction(1500))


def test_a_payers_second_bid_neither_wins_twice_nor_sets_the_price() -> None:
    bids = [Bid("a", 9, 0, True), Bid("a", 8, 0, True), Bid("b", 5, 1, True), Bid("c", 2, 0, True)]
    assert clear(bids, slots=3, free_slots=1, reserve=1) == Clearing(("a", "b"), 2, 1, 3, 1)
    uncovered_best = [Bid("a", 9, 0, False), Bid("a", 4, 2, True)]
    assert clear(uncovered_best, slots=2, free_slots=1, reserve=1).winners == ("a",)


def test_capacity_zero_is_unlimited_and_nobody_is_paced() -> None:
    outcome = clear([Bid("a", 9, 0, True)], slots=8, free_slots=2, reserve=1)
    rates = shares(outcome, ["a", "b"], UNLIMITED)
    assert rates.unlimited
    assert rates.rate("a", "a") == rates.rate("b") == 0


def test_a_rate_needs_an_active_address_and_a_won_slot() -> None:
    rates = shares(Clearing(("a",), 1, 1, 2, 1), ["b"], 100)
    assert [rates.rate("a", "a"), rates.rate("b", "a"), rates.rate("b")] == [50, 100, 50]
    assert shares(Clearing((), 1, 1, 2, 1), [], 100).free_share == 0


@pytest.mark.parametrize(
    ("slots", "free_slots", "reserve"),
    [(0, 0, 1), (8, 0, 1), (2, 3, 1), (8, 2, -1), (8, 2, 1.5), (True, 1, 1)],
)
def test_a_market_without_a_free_lane_or_with_odd_numbers_is_refused(
    slots: int, free_slots: int, reserve: int
) -> None:
    with pytest.raises(ValueError):
        clear([], slots, free_slots, reserve)


@pytest.mark.parametrize(
    ("payer", "price", "placed_at"), [("", 1, 0), ("a", -1, 0), ("a", 1.0, 0), ("a", 1, -1)]
)
def test_a_bid_is_a_named_payer_and_whole_base_units(
    payer: str, price: int, placed_at: int
) -> None:
    with pytest.raises(ValueError):
        Bid(payer, price, placed_at, True)


def test_shares_refuse_a_negative_capacity() -> None:
    with pytest.raises(ValueError):
        shares(Clearing((), 1, 1, 2, 1), ["a"], -1)


def test_with_paid_slots_to_spare_winning_just_above_the_reserve_can_cost_more_than_it_buys() -> (
    None
):
    """Why truthfulness is claimed only with more eligible bidders than paid slots: an unsold
    paid slot joins the free lane, which the bidder shares too. Winning adds a slot but takes
    1/N of one off its free share, so a bid pays only when value x (1 - 1/N) > reserve.
    Here (N = 2, reserve 10, value 11) losing is better: 11 x 1/2 > 11 x 3/4 - 10 x 1/2."""
    value, capacity = 11, 4
    won = shares(clear([Bid("me", 11, 0, True)], 2, 1, 10), ["me", "free"], capacity)
    lost = shares(clear([], 2, 1, 10), ["me", "free"], capacity)
    assert value * won.rate("me", "me") - 10 * won.paid_slot == 13
    assert value * lost.rate("me", "me") == 22
