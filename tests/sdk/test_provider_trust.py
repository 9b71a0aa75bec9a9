"""One download's trust in its providers, as plain state (the real processes are in
test_untrusted_providers.py)."""

from __future__ import annotations

from requester.protocol import BTT_LOCAL
from requester.provider_trust import ProviderTrust, TrustPolicy

EDGE, FOUND, OTHER = "http://edge:1", "http://found:2", "http://other:3"
PRICE = BTT_LOCAL.one // 4000


def test_configured_edges_are_known_and_others_on_probation() -> None:
    trust = ProviderTrust([EDGE + "/"])
    assert not trust.on_probation(EDGE)
    assert trust.on_probation(FOUND)
    assert trust.claim_payment(EDGE, 10 * BTT_LOCAL.one) is None  # known: no per-chunk cap
    assert trust.allowance.channels == 2 and trust.allowance.deposit == BTT_LOCAL.one // 10


def test_a_provider_on_probation_is_paid_one_chunk_until_it_delivers() -> None:
    trust = ProviderTrust([EDGE])
    assert trust.claim_payment(FOUND, PRICE) is None
    refusal = trust.claim_payment(FOUND, PRICE)
    assert refusal is not None and "paid again" in refusal
    trust.proven(FOUND)
    assert not trust.on_probation(FOUND)
    assert trust.claim_payment(FOUND, PRICE) is None
    assert trust.claim_payment(FOUND, PRICE) is None


def test_an_unknown_provider_may_not_ask_more_than_the_first_deposit() -> None:
    trust = ProviderTrust([EDGE], TrustPolicy(unknown_channels=1, unknown_deposit=1000))
    refusal = trust.claim_payment(OTHER, 1001)
    assert refusal is not None and "unknown_deposit" in refusal
    assert trust.claim_payment(OTHER, 1000) is None


def test_a_dropped_provider_is_paid_nothing_more_even_if_known() -> None:
    trust = ProviderTrust([EDGE])
    trust.drop(EDGE)
    assert trust.dropped(EDGE)
    refusal = trust.claim_payment(EDGE, PRICE)
    assert refusal is not None and "dropped" in refusal
