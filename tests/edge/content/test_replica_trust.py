"""The replicating edge's trust parts on their own: the hourly budget, the order of
providers, and how long a content's view of its providers lasts (cdn_edge/content/replica_trust.py).
The whole, with real edges and fake providers, is tests/edge/test_edge_replica_trust.py."""

from __future__ import annotations

from cdn_edge.content.replica_trust import MAX_CONTENTS, TRUST_TTL, HourlyChannels, ReplicaTrust
from requester.provider_trust import TrustPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_hourly_budget_slides_and_takes_back_what_was_not_used() -> None:
    clock = Clock()
    hourly = HourlyChannels(2, clock=clock)
    first = hourly.take()
    clock.now += 1800
    second = hourly.take()
    assert first is not None and second is not None
    assert hourly.take() is None
    hourly.give_back(second)  # a channel with room was paid instead: the slot is free again
    second = hourly.take()
    assert second is not None and hourly.take() is None
    clock.now += 1800  # the first reservation is an hour old: its slot comes back, not more
    assert hourly.take() is not None
    assert hourly.take() is None


def test_no_channels_per_hour_means_none() -> None:
    assert HourlyChannels(0).take() is None


def test_configured_peers_come_first_then_the_others_in_order() -> None:
    trust = ReplicaTrust(["http://peer:1/"], TrustPolicy(), per_hour=10)
    listed = ["http://fake:1", "http://peer:1", "http://other:2", "http://fake:3"]
    assert trust.ranked(listed) == [
        "http://peer:1", "http://fake:1", "http://other:2", "http://fake:3",
    ]  # fmt: skip
    assert trust.known("http://peer:1") and not trust.known("http://fake:1")


def test_a_content_view_lasts_an_hour_and_the_oldest_go_first() -> None:
    clock = Clock()
    trust = ReplicaTrust([], TrustPolicy(unknown_channels=2), per_hour=10, clock=clock)
    view = trust.content(b"a" * 32)
    view.trust.drop("http://fake:1")
    view.trust.allowance.channels -= 1
    clock.now += TRUST_TTL - 1
    assert trust.content(b"a" * 32) is view  # the same view: dropped stays dropped
    clock.now += 1
    fresh = trust.content(b"a" * 32)
    assert fresh is not view and not fresh.trust.dropped("http://fake:1")
    assert fresh.trust.allowance.channels == 2
    for n in range(MAX_CONTENTS):
        trust.content(n.to_bytes(32, "big"))
    assert trust.content(b"a" * 32) is not fresh  # pushed out by newer contents
