"""The edge's settlement policy (cdn_edge/settlement_policy.py), pure: which channel a round
redeems on TRON (a fee) and on the embedded ledger (none), and why."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from cdn_edge.settlement_policy import (
    NEAR_EXPIRY,
    ChannelFacts,
    Economics,
    Why,
    decide,
    decide_all,
)
from requester.protocol import BTT_LOCAL

ONE = BTT_LOCAL.one
NOW = 1_800_000_000
LATER = NOW + 86_400
TRON = Economics(fee_sun=6_000_000, units_per_trx=ONE // 2, ratio=Fraction(10))
"""6 TRX a redeem at 0.5 BTT per TRX: a fee of 3 BTT, a round waits for 30."""
FREE = Economics(fee_sun=0, units_per_trx=500_000 * ONE, ratio=Fraction(10))


def facts(paid: int, *, redeemed: int = 0, expires_at: int = LATER,
          ledger_redeemed: int | None = 0, open_: bool = True) -> ChannelFacts:  # fmt: skip
    return ChannelFacts(b"\x01" * 32, paid, redeemed, expires_at, ledger_redeemed, open_)


def why(ch: ChannelFacts, econ: Economics = TRON, *, now: int = NOW,
        stopping: bool = False) -> Why:  # fmt: skip
    return decide(ch, now, econ, stopping=stopping).why


def test_the_fee_is_energy_in_sun_at_the_operators_rate() -> None:
    assert TRON.fee() == 3 * ONE
    assert Economics(6_000_000, 500_000 * ONE, Fraction(10)).fee() == 3_000_000 * ONE
    assert Economics(6_000_000, 0, Fraction(10)).fee() == 0  # --btt-per-trx 0: free
    assert Economics(1, 1, Fraction(1)).fee() == 1  # rounded up, never to nothing
    assert Economics(6_000_000, ONE, Fraction(1)).fee(10**6) == 6 * 10**6  # a 6-decimal asset


def test_a_round_redeems_what_brings_ten_times_its_fee_and_waits_below() -> None:
    assert why(facts(30 * ONE)) is Why.WORTH_IT
    assert why(facts(30 * ONE - 1)) is Why.BELOW_RATIO
    assert why(facts(40 * ONE, redeemed=15 * ONE, ledger_redeemed=15 * ONE)) is Why.BELOW_RATIO
    decision = decide(facts(40 * ONE, redeemed=5 * ONE, ledger_redeemed=5 * ONE), NOW, TRON,
                      stopping=False)  # fmt: skip
    assert (decision.redeem, decision.value, decision.fee) == (True, 35 * ONE, 3 * ONE)


def test_near_expiry_it_redeems_what_brings_more_than_the_fee() -> None:
    near = NOW + NEAR_EXPIRY
    assert why(facts(3 * ONE + 1, expires_at=near)) is Why.EXPIRING
    assert why(facts(3 * ONE, expires_at=near)) is Why.BELOW_FEE  # costs what it brings
    assert why(facts(3 * ONE + 1, expires_at=near + 1)) is Why.BELOW_RATIO
    assert why(facts(ONE, expires_at=NOW)) is Why.EXPIRED  # the contract refuses it now


def test_a_close_request_seen_on_the_ledger_makes_it_due() -> None:
    """The round passes the ledger's expiry: a payer's requestClose brought it forward."""
    before = facts(5 * ONE, expires_at=LATER)
    closed = facts(5 * ONE, expires_at=NOW + 600)
    assert (why(before), why(closed)) == (Why.BELOW_RATIO, Why.EXPIRING)


def test_on_stop_it_redeems_what_brings_more_than_the_fee() -> None:
    assert why(facts(3 * ONE + 1), stopping=True) is Why.STOPPING
    assert why(facts(3 * ONE), stopping=True) is Why.BELOW_FEE
    assert why(facts(30 * ONE), stopping=True) is Why.WORTH_IT


def test_a_free_ledger_keeps_one_redeem_near_expiry_and_everything_on_stop() -> None:
    """The embedded ledger's schedule, unchanged: it costs nothing, whatever it brings."""
    assert why(facts(1), FREE) is Why.NOT_YET
    assert why(facts(10**30), FREE) is Why.NOT_YET
    assert why(facts(1, expires_at=NOW + NEAR_EXPIRY), FREE) is Why.EXPIRING
    assert why(facts(1), FREE, stopping=True) is Why.STOPPING
    assert why(facts(1, ledger_redeemed=None), FREE, stopping=True) is Why.STOPPING


def test_what_the_ledger_holds_already_is_recorded_whatever_it_is_worth() -> None:
    """A redeem a crash left unanswered: followed (or refused already_redeemed), recorded."""
    for econ in (TRON, FREE):
        assert why(facts(ONE, ledger_redeemed=ONE), econ) is Why.APPLIED
        assert why(facts(ONE, ledger_redeemed=2 * ONE, open_=False), econ) is Why.APPLIED
    assert why(facts(ONE, ledger_redeemed=ONE // 2, open_=False), stopping=True) is Why.CLOSED
    assert why(facts(ONE, ledger_redeemed=None, expires_at=NOW - 1)) is Why.EXPIRED


def test_a_ratio_of_zero_redeems_every_round() -> None:
    every = Economics(6_000_000, ONE // 2, Fraction(0))
    assert [d.why for d in decide_all([facts(1), facts(ONE)], NOW, every, stopping=False)] == [
        Why.WORTH_IT, Why.WORTH_IT]  # fmt: skip


amounts = st.integers(0, 10**24)


@given(paid=amounts, redeemed=amounts, ledger=st.none() | amounts, fee_sun=st.integers(0, 10**8),
       rate=st.integers(0, 10**24), ratio=st.fractions(1, 100), left=st.integers(-10, 10**6),
       stopping=st.booleans(), open_=st.booleans())  # fmt: skip
def test_no_redeem_costs_more_than_it_brings_or_misses_its_expiry(
    paid: int, redeemed: int, ledger: int | None, fee_sun: int, rate: int, ratio: Fraction,
    left: int, stopping: bool, open_: bool,
) -> None:  # fmt: skip
    """With a ratio of at least 1: a redeem sent either follows what the ledger holds, or
    brings more than its fee before the expiry; near expiry or on stop, every such channel
    is redeemed."""
    econ = Economics(fee_sun, rate, ratio)
    ch = ChannelFacts(b"\x02" * 32, paid, redeemed, NOW + left, ledger, open_)
    d = decide(ch, NOW, econ, stopping=stopping)
    if d.why is Why.APPLIED:
        assert ledger is not None and ledger >= paid > redeemed
        return
    if d.redeem:
        assert open_ and left > 0 and d.value > 0 and (d.value > d.fee or d.fee == 0)
    due = stopping or left <= NEAR_EXPIRY
    if open_ and left > 0 and due and d.value > d.fee:
        assert d.redeem
