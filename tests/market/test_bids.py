"""The edge's bid book: coverage, a payer's latest bid, its place in ties, the round's end."""

from __future__ import annotations

from cdn_edge.market.bids import BidBook
from requester.protocol import BTT_LOCAL

MIB = 1 << 20
BTT = BTT_LOCAL.one


def book(**kw: int) -> BidBook:
    # 4 MiB/s over 4 slots: a slot carries 1 MiB/s; rounds of 2 s.
    return BidBook(capacity=4 * MIB, slots=4, free_slots=2, reserve=kw.get("reserve", BTT),
                   round_seconds=2.0)  # fmt: skip


def test_a_bid_is_covered_when_the_channel_pays_it_for_one_slot_for_one_round() -> None:
    b = book()
    assert b.coverage(3 * BTT) == 6 * BTT  # 3 BTT/MiB x 1 MiB/s x 2 s
    assert b.place("A", 3 * BTT, 6 * BTT).covered
    assert not b.place("B", 3 * BTT, 6 * BTT - 1).covered


def test_the_round_clears_the_latest_bids_and_starts_empty() -> None:
    b = book()
    assert b.clearing.price == BTT and b.clearing.winners == ()  # before any round: the reserve
    b.place("A", 9 * BTT, 100 * BTT)
    b.place("A", 5 * BTT, 100 * BTT)  # the latest bid counts
    b.place("B", 4 * BTT, 100 * BTT)
    b.place("C", 3 * BTT, 100 * BTT)
    b.place("D", 2 * BTT, 1)  # not covered: takes no part
    clearing = b.close_round()
    assert clearing.winners == ("A", "B") and clearing.price == 3 * BTT and b.round == 1
    assert b.close_round().winners == ()  # nobody bid again


def test_restating_a_bid_keeps_its_place_in_a_tie_and_changing_it_does_not() -> None:
    b = book()
    b.place("Z", 2 * BTT, 100 * BTT)
    b.place("A", 2 * BTT, 100 * BTT)
    b.place("M", 2 * BTT, 100 * BTT)
    b.place("Z", 2 * BTT, 100 * BTT)  # restated: still the earliest
    assert b.close_round().winners == ("Z", "A")
    b.place("A", 2 * BTT, 100 * BTT)
    b.place("Z", 3 * BTT, 100 * BTT)
    b.place("Z", 2 * BTT, 100 * BTT)  # back to 2: placed anew, now after A
    b.place("M", 2 * BTT, 100 * BTT)
    assert b.close_round().winners == ("A", "M")


def test_an_address_remembers_the_payer_it_named_for_the_round() -> None:
    b = book()
    b.named("10.0.0.1", ("A", b"\x01" * 32))
    assert b.payer_at("10.0.0.1") == ("A", b"\x01" * 32)
    assert b.payer_at("10.0.0.2") is None
    b.close_round()
    assert b.payer_at("10.0.0.1") is None
