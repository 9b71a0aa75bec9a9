"""The requester's decisions in the BTT market, without a network: which providers get a
paid slot, what is bid, when a provider is left to its free lane, and how providers are
scored for the chunks needed first (requester/bidding.py, requester/provider_choice.py).
Times are passed in, so each rule is checked exactly."""

from __future__ import annotations

import random

from requester.bidding import Bidding, Market, parse_market
from requester.provider_choice import ProviderChoice

MIB = 1 << 20
A, B, C, OLD = "http://a", "http://b", "http://c", "http://old"


def market(*prices: tuple[str, int], ceiling: int | None = 5,
           target: int | None = None) -> Bidding:  # fmt: skip
    bidding = Bidding(ceiling, target)
    for provider, price in prices:
        found = Market(capacity=8 * MIB, round_seconds=10, clearing_price=price)
        bidding.learn(provider, found, now=0.0)
    return bidding


def test_every_provider_within_the_ceiling_is_paid_and_bid_the_ceiling() -> None:
    bidding = market((A, 1), (B, 3), (C, 9))
    bidding.learn(OLD, None)  # no market in its /v1/info: paid only when it asks (402)
    assert bidding.paying == {A, B}
    assert [bidding.wants_paid(p, 0) for p in (A, B, C, OLD)] == [True, True, False, False]
    assert bidding.bid(A) == bidding.bid(B) == 5  # truthful: the ceiling, whatever the price


def test_without_a_ceiling_it_bids_the_going_price() -> None:
    bidding = market((A, 2), ceiling=None)
    assert bidding.bid(A) == 2 and bidding.paying == {A}


def test_an_empty_wallet_or_a_zero_ceiling_pays_nobody() -> None:
    assert market((A, 0), ceiling=0).paying == set()
    assert Bidding(0).free_only is not None
    poor = market((A, 1), (B, 2))
    poor.cannot_pay(A, "wallet balance is 0 BTT")
    assert not poor.wants_paid(A, 0) and poor.wants_paid(B, 0)
    poor.replan(1)
    assert poor.paying == {B}


def test_a_price_above_the_ceiling_for_two_rounds_leaves_the_free_lane_only() -> None:
    bidding = market((A, 1))
    bidding.observe(A, 6, now=100.0)  # raised above the ceiling of 5
    assert bidding.wants_paid(A, 100.0) and bidding.wants_paid(A, 119.9)  # still bidding 5
    assert not bidding.wants_paid(A, 120.0)  # two rounds of 10 s
    bidding.replan(120.0)
    assert bidding.paying == set()
    bidding.observe(A, 4, now=130.0)  # back under it: a slot is worth buying again
    bidding.replan(130.0)
    assert bidding.wants_paid(A, 130.0)


def test_with_a_target_rate_it_buys_the_cheapest_slots_first_until_the_rate_is_reached() -> None:
    bidding = market((A, 1), (B, 3), (C, 2), target=10 * MIB)
    assert bidding.paying == {A}  # the cheapest first
    paid = []
    for second in range(1, 31):  # 4 MiB/s delivered: under the target, one more a round
        bidding.delivered(4 * MIB, float(second))
        paid.append(len(bidding.paying))
    assert paid[8] == 1 and paid[9] == 2 and paid[19] == 3  # a slot shows a round later
    assert bidding.paying == {A, C, B}
    for second in range(31, 61):  # 40 MiB/s: well over it, the dearest go first
        bidding.delivered(40 * MIB, float(second))
    assert bidding.paying == {A}
    dear = market((A, 9), target=10 * MIB)  # nothing within the ceiling: nothing to pay
    for second in range(1, 30):
        dear.delivered(MIB, float(second))
    assert dear.paying == set()
    late = market((B, 3), target=10 * MIB)
    assert late.paying == {B}  # the only one known yet
    late.learn(A, Market(capacity=8 * MIB, round_seconds=10, clearing_price=1), now=1.0)
    for second in range(1, 12):  # at the target: a cheaper one found since takes its place
        late.delivered(10 * MIB, float(second))
    assert late.paying == {A}


def test_cheapest_is_per_delivered_mib_failures_counted() -> None:
    bidding = market((A, 1), (C, 2), target=10 * MIB)
    for _ in range(10):
        bidding.choice.failed(A)  # A rarely delivers: a MiB from it costs more than C's
    bidding.paying.clear()
    bidding.replan(0.0)
    assert bidding.paying == {C}


def test_parse_market_reads_the_info_and_refuses_nonsense() -> None:
    info = {"market": {"capacity": 8388608, "slots": 8, "free_slots": 2, "reserve": "1",
                       "clearing_price": "4", "round_seconds": 10, "winners": 6}}  # fmt: skip
    parsed = parse_market(info)
    assert parsed == Market(capacity=8388608, round_seconds=10.0, clearing_price=4, slots=8)
    assert parse_market({"price_per_mib": "1"}) is None  # an edge of before the market
    assert parse_market({"market": {"capacity": -1}}) is None
    assert parse_market({"market": {"capacity": True}}) is None
    odd = parse_market({"market": {"capacity": 0, "clearing_price": "x", "round_seconds": -4}})
    assert odd == Market(capacity=0, round_seconds=10.0, clearing_price=None)
    assert odd is not None and not odd.auction


def test_slower_providers_pick_further_into_the_window() -> None:
    choice = ProviderChoice(explore=0.0)
    choice.asked(A, 0.0)
    choice.delivered(A, MIB // 4, 0.1, 0, 0.1)  # 2.5 MiB/s
    choice.delivered(B, MIB // 4, 0.4, 0, 0.4)  # 4 times slower
    assert choice.lag(A, MIB // 4, 16) == 0
    assert choice.lag(B, MIB // 4, 16) == 3
    assert choice.lag(C, MIB // 4, 16) == 0  # never measured: tried at once
    for _ in range(10):
        choice.delivered(B, MIB // 4, 100.0, 0, 100.0)
    assert choice.lag(B, MIB // 4, 16) == 8  # at most half the window
    assert choice.records[A].first_chunk == 0.1


def test_exploration_sometimes_ignores_the_score() -> None:
    choice = ProviderChoice(explore=0.5, rng=random.Random(7))
    choice.delivered(A, MIB, 0.1, 0, 0.1)
    choice.delivered(B, MIB, 1.0, 0, 1.0)
    lags = [choice.lag(B, MIB, 16) for _ in range(200)]
    assert set(lags) == {0, 8}  # 9 times slower, at most half the window


def test_failures_and_prices_move_the_averages() -> None:
    choice = ProviderChoice(explore=0.0)
    choice.delivered(A, MIB, 1.0, 4, 1.0)
    assert choice.records[A].price == 4.0 and choice.cost_per_mib(A, 4) == 4.0
    choice.failed(A)
    assert choice.records[A].success < 1.0 and choice.cost_per_mib(A, 4) > 4.0
    assert choice.score(A) < MIB
