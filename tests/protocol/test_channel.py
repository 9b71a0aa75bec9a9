"""Channel state machines: when the payer signs, and when the payee serves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
)

from requester.protocol import (
    BTT,
    LOCAL_CHAIN_ID,
    SETTLE_MARGIN,
    ChannelClosed,
    ChannelExpired,
    ChannelStatus,
    ChannelTerms,
    DepositExceeded,
    InvalidSignature,
    MalformedMessage,
    PayeeChannel,
    PayerChannel,
    PayerKey,
    PaymentDomain,
    PersistVoucher,
    ProtocolError,
    Reclaim,
    Redeem,
    SendVoucher,
    Serve,
    StaleVoucher,
    Underpaid,
    Voucher,
    WrongBinding,
)
from tests.conftest import (
    EXPIRES_AT,
    NOW,
    OTHER_PAYER_SECRET,
    PAYEE_SECRET,
    PAYER_SECRET,
    make_terms,
    make_voucher,
)

PAYER = PayerKey(PAYER_SECRET)
PAYEE = PayerKey(PAYEE_SECRET)
OTHER = PayerKey(OTHER_PAYER_SECRET)
TERMS = make_terms(PAYER, PAYEE, deposit=1000)
CUTOFF = EXPIRES_AT - SETTLE_MARGIN


def status(channel: PayerChannel | PayeeChannel) -> ChannelStatus:
    """The status as of now (a call, so type checkers do not carry narrowing across calls)."""
    return channel.status


def refused(
    call: Callable[[], object], cls: type[ProtocolError], status: int, match: str | None = None
) -> ProtocolError:
    """Run ``call``; it must raise exactly ``cls`` (not a subclass) with ``status``."""
    with pytest.raises(cls, match=match) as info:
        call()
    assert type(info.value) is cls
    assert info.value.status == status
    assert info.value.problem()["status"] == status
    return info.value


def voucher_bytes(amount: int, terms: ChannelTerms = TERMS, key: PayerKey = PAYER) -> bytes:
    return make_voucher(key, terms, amount).encode()


# Payer -----------------------------------------------------------------------------


def test_payer_signs_cumulative_vouchers_persist_then_send() -> None:
    payer = PayerChannel(TERMS, PAYER)
    first = payer.pay(100, NOW)
    assert [type(a) for a in first] == [PersistVoucher, SendVoucher]
    persisted, sent = first
    assert isinstance(persisted, PersistVoucher)
    assert isinstance(sent, SendVoucher)
    assert persisted.voucher == sent.voucher
    assert sent.voucher.amount == 100
    second = payer.pay(50, NOW)[1]
    assert isinstance(second, SendVoucher)
    assert second.voucher.amount == 150
    assert (payer.issued, payer.remaining) == (150, 850)
    decoded = Voucher.decode(second.voucher.encode())
    assert (decoded.payer, decoded.payee, decoded.channel_id) == (
        PAYER.address,
        PAYEE.address,
        TERMS.channel_id,
    )
    assert (decoded.domain, decoded.asset) == (TERMS.domain, TERMS.asset)


def test_payer_refuses_paying_beyond_the_deposit() -> None:
    payer = PayerChannel(TERMS, PAYER)
    payer.pay(900, NOW)
    error = refused(lambda: payer.pay(101, NOW), DepositExceeded, 402, "more deposit")
    assert "0.000000000000000001 BTT more deposit" in error.message
    assert payer.issued == 900
    payer.pay(100, NOW)
    assert payer.remaining == 0
    refused(lambda: payer.pay(1, NOW), DepositExceeded, 402)


@pytest.mark.parametrize("cost", [0, -1])
def test_payer_refuses_non_positive_payments(cost: int) -> None:
    payer = PayerChannel(TERMS, PAYER)
    refused(lambda: payer.pay(cost, NOW), MalformedMessage, 400, "positive")
    assert payer.issued == 0


def test_payer_refuses_after_close() -> None:
    payer = PayerChannel(TERMS, PAYER)
    payer.pay(1, NOW)
    payer.close()
    assert status(payer) is ChannelStatus.CLOSED
    refused(lambda: payer.pay(1, NOW), ChannelClosed, 409)
    assert payer.issued == 1


def test_payer_refuses_near_expiry() -> None:
    payer = PayerChannel(TERMS, PAYER)
    payer.pay(1, CUTOFF - 1)
    refused(lambda: payer.pay(1, CUTOFF), ChannelExpired, 402)
    refused(lambda: payer.pay(1, EXPIRES_AT + 10), ChannelExpired, 402)
    assert payer.issued == 1


def test_payer_tick_reclaims_once_after_expiry() -> None:
    payer = PayerChannel(TERMS, PAYER)
    assert payer.tick(NOW) == []
    assert payer.tick(EXPIRES_AT - 1) == []
    assert status(payer) is ChannelStatus.OPEN
    assert payer.tick(EXPIRES_AT) == [Reclaim(TERMS.channel_id)]
    assert payer.reclaimed
    assert status(payer) is ChannelStatus.CLOSED
    assert payer.tick(EXPIRES_AT) == []
    assert payer.tick(EXPIRES_AT + 10**6) == []
    refused(lambda: payer.pay(1, NOW), ChannelClosed, 409)


def test_payer_tick_after_close_still_reclaims() -> None:
    payer = PayerChannel(TERMS, PAYER)
    payer.close()
    assert payer.tick(EXPIRES_AT + 1) == [Reclaim(TERMS.channel_id)]
    assert payer.tick(EXPIRES_AT + 2) == []


def test_payer_construction_and_restart() -> None:
    refused(lambda: PayerChannel(TERMS, OTHER), WrongBinding, 400, "not the channel's payer")
    refused(lambda: PayerChannel(TERMS, PAYER, issued=-1), MalformedMessage, 400)
    refused(lambda: PayerChannel(TERMS, PAYER, issued=1001), MalformedMessage, 400)
    restored = PayerChannel(TERMS, PAYER, issued=400)
    sent = restored.pay(1, NOW)[1]
    assert isinstance(sent, SendVoucher)
    assert sent.voucher.amount == 401


def test_payer_top_up() -> None:
    payer = PayerChannel(TERMS, PAYER)
    payer.pay(1000, NOW)
    payer.top_up(1500, EXPIRES_AT + 100)
    assert payer.terms.deposit == 1500
    assert payer.terms.expires_at == EXPIRES_AT + 100
    payer.pay(500, CUTOFF + 50)
    refused(lambda: payer.top_up(1499, EXPIRES_AT + 100), MalformedMessage, 400)
    refused(lambda: payer.top_up(1500, EXPIRES_AT), MalformedMessage, 400)
    assert payer.terms.deposit == 1500


# Payee -----------------------------------------------------------------------------


def test_payee_accepts_persist_then_serve() -> None:
    payee = PayeeChannel(TERMS)
    v = make_voucher(PAYER, TERMS, 100)
    assert payee.charge(60, v.encode(), NOW) == [PersistVoucher(v), Serve(60)]
    assert (payee.paid, payee.consumed, payee.credit) == (100, 60, 40)
    assert payee.best == v


def test_payee_serves_prepaid_credit_without_a_voucher() -> None:
    payee = PayeeChannel(TERMS)
    payee.charge(10, voucher_bytes(100), NOW)
    for _ in range(9):
        assert payee.charge(10, None, NOW) == [Serve(10)]
    assert (payee.paid, payee.consumed, payee.credit) == (100, 100, 0)
    assert payee.charge(0, None, NOW) == [Serve(0)]
    refused(lambda: payee.charge(1, None, NOW), Underpaid, 402, "Atlas-Voucher")
    assert payee.consumed == 100


def test_payee_without_voucher_or_credit_is_underpaid() -> None:
    payee = PayeeChannel(TERMS)
    error = refused(lambda: payee.charge(5, None, NOW), Underpaid, 402)
    assert "0.000000000000000005 BTT owed" in error.message


def _other_terms(**changes: object) -> ChannelTerms:
    return replace(TERMS, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("terms", "what"),
    [
        (_other_terms(payee=OTHER.address), "payee"),
        (_other_terms(domain=PaymentDomain(LOCAL_CHAIN_ID + 1, TERMS.domain.contract)), "chain"),
        (_other_terms(domain=PaymentDomain(LOCAL_CHAIN_ID, bytes(20))), "chain"),
        (_other_terms(asset=BTT), "asset"),
        (_other_terms(channel_id=bytes(32)), "channel"),
    ],
)
def test_payee_refuses_vouchers_bound_elsewhere(terms: ChannelTerms, what: str) -> None:
    payee = PayeeChannel(TERMS)
    refused(
        lambda: payee.charge(1, voucher_bytes(100, terms), NOW),
        WrongBinding,
        400,
        f"voucher is for another {what}",
    )
    assert (payee.paid, payee.consumed) == (0, 0)


def test_payee_refuses_another_payer() -> None:
    payee = PayeeChannel(TERMS)
    theirs = replace(TERMS, payer=OTHER.address)
    refused(
        lambda: payee.charge(1, voucher_bytes(100, theirs, OTHER), NOW),
        WrongBinding,
        400,
        "voucher is for another payer",
    )


def test_payee_refuses_bad_signatures() -> None:
    payee = PayeeChannel(TERMS)
    v = make_voucher(PAYER, TERMS, 100)
    forged = v.encode()[:-65] + OTHER.sign_digest(v.digest())
    refused(lambda: payee.charge(1, forged, NOW), InvalidSignature, 400)
    swapped_v = v.encode()[:-1] + bytes([55 - v.signature[64]])
    refused(lambda: payee.charge(1, swapped_v, NOW), InvalidSignature, 400)
    assert payee.paid == 0


def test_payee_refuses_garbage() -> None:
    payee = PayeeChannel(TERMS)
    refused(lambda: payee.charge(1, b"not a voucher", NOW), MalformedMessage, 400)
    refused(lambda: payee.charge(-1, None, NOW), MalformedMessage, 400, "negative")


def test_payee_refuses_stale_and_replayed_vouchers() -> None:
    payee = PayeeChannel(TERMS)
    payee.charge(100, voucher_bytes(100), NOW)
    refused(lambda: payee.charge(1, voucher_bytes(100), NOW), StaleVoucher, 409, "not above")
    refused(lambda: payee.charge(1, voucher_bytes(99), NOW), StaleVoucher, 409)
    refused(lambda: payee.charge(1, voucher_bytes(0), NOW), StaleVoucher, 409)
    assert (payee.paid, payee.consumed) == (100, 100)


def test_an_overtaken_voucher_is_served_from_the_credit_its_successor_left() -> None:
    """Concurrent requests: the voucher for 20 arrives before the one for 10."""
    payee = PayeeChannel(TERMS)
    assert payee.charge(10, voucher_bytes(20), NOW)[0] == PersistVoucher(
        Voucher.decode(voucher_bytes(20))
    )
    assert payee.charge(10, voucher_bytes(10), NOW) == [Serve(10)]
    assert (payee.paid, payee.consumed, payee.credit) == (20, 20, 0)
    refused(lambda: payee.charge(10, voucher_bytes(10), NOW), StaleVoucher, 409)


def test_payee_refuses_vouchers_above_the_deposit() -> None:
    payee = PayeeChannel(TERMS)
    refused(lambda: payee.charge(1, voucher_bytes(1001), NOW), DepositExceeded, 402, "top up")
    payee.charge(1, voucher_bytes(1000), NOW)
    assert payee.paid == 1000


def test_payee_top_up_admits_larger_vouchers() -> None:
    payee = PayeeChannel(TERMS)
    payee.top_up(2000, EXPIRES_AT)
    payee.charge(1, voucher_bytes(1500), NOW)
    assert payee.paid == 1500
    refused(lambda: payee.top_up(1999, EXPIRES_AT), MalformedMessage, 400)


def test_payee_refuses_underpayment() -> None:
    payee = PayeeChannel(TERMS)
    payee.charge(50, voucher_bytes(60), NOW)  # credit 10
    error = refused(lambda: payee.charge(30, voucher_bytes(75), NOW), Underpaid, 402)
    assert "0.000000000000000005 BTT unpaid" in error.message
    assert (payee.paid, payee.consumed) == (60, 50)
    payee.charge(30, voucher_bytes(80), NOW)  # exactly covers it
    assert (payee.paid, payee.consumed, payee.credit) == (80, 80, 0)


def test_payee_refuses_near_expiry() -> None:
    payee = PayeeChannel(TERMS)
    payee.charge(1, voucher_bytes(10), CUTOFF - 1)
    refused(lambda: payee.charge(1, voucher_bytes(20), CUTOFF), ChannelExpired, 402)
    refused(lambda: payee.charge(1, None, CUTOFF), ChannelExpired, 402)
    assert payee.paid == 10


def test_payee_refuses_after_close() -> None:
    payee = PayeeChannel(TERMS)
    payee.charge(1, voucher_bytes(10), NOW)
    assert payee.close() == [Redeem(make_voucher(PAYER, TERMS, 10))]
    assert status(payee) is ChannelStatus.CLOSED
    refused(lambda: payee.charge(1, None, NOW), ChannelClosed, 409)
    refused(lambda: payee.charge(1, voucher_bytes(20), NOW), ChannelClosed, 409)


def test_payee_refusal_order_follows_the_spec() -> None:
    """Closed, then expired, then decoding, then binding, then stale, then deposit, then cost."""
    payee = PayeeChannel(TERMS)
    payee.charge(0, voucher_bytes(500), NOW)
    bad_everything = voucher_bytes(10, replace(TERMS, payee=OTHER.address))
    refused(lambda: payee.charge(10**6, bad_everything, CUTOFF), ChannelExpired, 402)
    refused(lambda: payee.charge(10**6, b"junk", CUTOFF), ChannelExpired, 402)
    refused(lambda: payee.charge(10**6, bad_everything, NOW), WrongBinding, 400)
    refused(lambda: payee.charge(10**6, voucher_bytes(400), NOW), StaleVoucher, 409)
    big_terms = replace(TERMS, deposit=10**6)
    refused(lambda: payee.charge(10**6, voucher_bytes(5000, big_terms), NOW), DepositExceeded, 402)
    payee.close()
    refused(lambda: payee.charge(10**6, b"junk", CUTOFF), ChannelClosed, 409)


def test_same_voucher_64_times_is_credited_once() -> None:
    payee = PayeeChannel(TERMS)
    data = voucher_bytes(10)
    outcomes: list[str] = []
    for _ in range(64):
        try:
            actions = payee.charge(10, data, NOW)
        except StaleVoucher:
            outcomes.append("stale")
        else:
            assert actions == [PersistVoucher(Voucher.decode(data)), Serve(10)]
            outcomes.append("credited")
    assert outcomes.count("credited") == 1
    assert outcomes.count("stale") == 63
    assert (payee.paid, payee.consumed, payee.credit) == (10, 10, 0)


def test_payee_refuses_negative_consumed() -> None:
    """Restored state with consumed < 0 would grant credit nobody paid for."""
    refused(lambda: PayeeChannel(TERMS, None, consumed=-1), MalformedMessage, 400)
    best = make_voucher(PAYER, TERMS, 300)
    refused(lambda: PayeeChannel(TERMS, best, consumed=-300), MalformedMessage, 400)


def test_payee_construction_and_redeeming() -> None:
    best = make_voucher(PAYER, TERMS, 300)
    refused(lambda: PayeeChannel(TERMS, best, consumed=301), MalformedMessage, 400)
    refused(lambda: PayeeChannel(TERMS, None, consumed=1), MalformedMessage, 400)
    payee = PayeeChannel(TERMS, best, consumed=100)
    assert payee.credit == 200
    assert payee.redeem_due(EXPIRES_AT - 2 * SETTLE_MARGIN - 1) == []
    assert payee.redeem_due(EXPIRES_AT - 2 * SETTLE_MARGIN) == [Redeem(best)]
    payee.mark_redeemed(300)
    assert payee.redeem_due(EXPIRES_AT) == []
    assert payee.close() == []
    refused(lambda: payee.mark_redeemed(299), MalformedMessage, 400)
    refused(lambda: payee.mark_redeemed(301), MalformedMessage, 400)
    assert PayeeChannel(TERMS).redeem_due(EXPIRES_AT) == []
    assert PayeeChannel(TERMS).close() == []


def test_payer_and_payee_agree_end_to_end() -> None:
    payer = PayerChannel(TERMS, PAYER)
    payee = PayeeChannel(TERMS)
    for _ in range(10):
        sent = payer.pay(100, NOW)[1]
        assert isinstance(sent, SendVoucher)
        assert payee.charge(100, sent.voucher.encode(), NOW)[-1] == Serve(100)
    assert payer.issued == payee.paid == payee.consumed == 1000
    refused(lambda: payer.pay(1, NOW), DepositExceeded, 402)
    refused(lambda: payee.charge(1, None, NOW), Underpaid, 402)


# Random interleavings of both machines ---------------------------------------------

MACHINE_DEPOSIT = 5_000
MACHINE_EXPIRY = NOW + 4 * SETTLE_MARGIN


@settings(max_examples=100, stateful_step_count=50, deadline=None)
class ChannelPair(RuleBasedStateMachine):
    """A payer and a payee on one channel, with vouchers delivered late, twice or corrupted."""

    vouchers = Bundle("vouchers")

    def __init__(self) -> None:
        super().__init__()
        terms = replace(make_terms(PAYER, PAYEE, MACHINE_DEPOSIT), expires_at=MACHINE_EXPIRY)
        self.payer = PayerChannel(terms, PAYER)
        self.payee = PayeeChannel(terms)
        self.now = NOW
        self.credited: set[bytes] = set()
        self.last_paid = 0
        self.reclaims = 0

    def usable(self) -> bool:
        return self.now < self.payee.terms.expires_at - SETTLE_MARGIN

    @rule(target=vouchers, cost=st.integers(1, 3000))
    def pay(self, cost: int) -> bytes | MultipleResults[bytes]:
        """Sign a voucher; it is delivered later (or never) by another rule."""
        data = self._pay(cost)
        return multiple() if data is None else data

    @rule(cost=st.integers(1, 1500), charge=st.integers(0, 1500))
    def pay_and_deliver(self, cost: int, charge: int) -> None:
        """The usual exchange: sign a voucher and send it with the request at once."""
        data = self._pay(cost)
        if data is not None:
            self.charge_with_voucher(data, charge)

    def _pay(self, cost: int) -> bytes | None:
        before = self.payer.issued
        if self.payer.reclaimed:
            refused(lambda: self.payer.pay(cost, self.now), ChannelClosed, 409)
        elif not self.usable():
            refused(lambda: self.payer.pay(cost, self.now), ChannelExpired, 402)
        elif cost > self.payer.remaining:
            refused(lambda: self.payer.pay(cost, self.now), DepositExceeded, 402)
        else:
            persist, send = self.payer.pay(cost, self.now)
            assert isinstance(persist, PersistVoucher)
            assert isinstance(send, SendVoucher)
            assert persist.voucher == send.voucher
            assert send.voucher.amount == before + cost == self.payer.issued
            return send.voucher.encode()
        assert self.payer.issued == before
        return None

    @rule(data=vouchers, cost=st.integers(0, 1500))
    def charge_with_voucher(self, data: bytes, cost: int) -> None:
        """Deliver a voucher: a fresh one, a late one, or a replay."""
        amount = Voucher.decode(data).amount
        paid, consumed = self.payee.paid, self.payee.consumed
        if not self.usable():
            refused(lambda: self.payee.charge(cost, data, self.now), ChannelExpired, 402)
        elif amount <= paid and cost <= paid - consumed:  # overtaken: served from credit
            assert self.payee.charge(cost, data, self.now) == [Serve(cost)]
            assert (self.payee.paid, self.payee.consumed) == (paid, consumed + cost)
            return
        elif amount <= paid:
            refused(lambda: self.payee.charge(cost, data, self.now), StaleVoucher, 409)
        elif amount - consumed < cost:
            refused(lambda: self.payee.charge(cost, data, self.now), Underpaid, 402)
        else:
            actions = self.payee.charge(cost, data, self.now)
            assert actions == [PersistVoucher(Voucher.decode(data)), Serve(cost)]
            assert data not in self.credited, "the same voucher was credited twice"
            self.credited.add(data)
            assert (self.payee.paid, self.payee.consumed) == (amount, consumed + cost)
            return
        assert (self.payee.paid, self.payee.consumed) == (paid, consumed)

    @rule(cost=st.integers(0, 1500))
    def charge_from_credit(self, cost: int) -> None:
        paid, consumed = self.payee.paid, self.payee.consumed
        if not self.usable():
            refused(lambda: self.payee.charge(cost, None, self.now), ChannelExpired, 402)
        elif cost > paid - consumed:
            refused(lambda: self.payee.charge(cost, None, self.now), Underpaid, 402)
        else:
            assert self.payee.charge(cost, None, self.now) == [Serve(cost)]
            assert self.payee.consumed == consumed + cost
            return
        assert self.payee.consumed == consumed

    @precondition(lambda self: bool(self.credited))
    @rule(data=st.data())
    def replay_credited(self, data: st.DataObject) -> None:
        voucher = data.draw(st.sampled_from(sorted(self.credited)))
        paid, consumed = self.payee.paid, self.payee.consumed
        expected = StaleVoucher if self.usable() else ChannelExpired
        with pytest.raises(expected):  # asks for more than the credit left
            self.payee.charge(paid - consumed + 1, voucher, self.now)
        assert (self.payee.paid, self.payee.consumed) == (paid, consumed)

    @rule(data=vouchers, index=st.integers(0, 187), mask=st.integers(1, 255))
    def deliver_corrupted(self, data: bytes, index: int, mask: int) -> None:
        corrupt = data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]
        paid, consumed = self.payee.paid, self.payee.consumed
        with pytest.raises(ProtocolError):
            self.payee.charge(0, corrupt, self.now)
        assert (self.payee.paid, self.payee.consumed) == (paid, consumed)

    @precondition(lambda self: not self.payer.reclaimed)
    @rule(extra=st.integers(0, 3000), extend=st.integers(0, SETTLE_MARGIN))
    def top_up(self, extra: int, extend: int) -> None:
        deposit = self.payer.terms.deposit + extra
        expires_at = self.payer.terms.expires_at + extend
        self.payer.top_up(deposit, expires_at)
        self.payee.top_up(deposit, expires_at)
        assert self.payer.terms == self.payee.terms

    @rule(seconds=st.integers(0, 400))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds
        actions = self.payer.tick(self.now)
        if self.now >= self.payer.terms.expires_at and self.reclaims == 0:
            assert actions == [Reclaim(self.payer.terms.channel_id)]
            self.reclaims += 1
        else:
            assert actions == []

    @invariant()
    def paid_within_deposit(self) -> None:
        assert self.payee.paid <= self.payee.terms.deposit

    @invariant()
    def paid_never_decreases(self) -> None:
        assert self.payee.paid >= self.last_paid
        self.last_paid = self.payee.paid

    @invariant()
    def consumed_within_paid(self) -> None:
        assert 0 <= self.payee.consumed <= self.payee.paid
        assert self.payee.credit == self.payee.paid - self.payee.consumed

    @invariant()
    def payer_issued_covers_payee_paid(self) -> None:
        assert self.payer.issued >= self.payee.paid
        assert self.payer.issued <= self.payer.terms.deposit

    @invariant()
    def best_voucher_is_the_paid_one(self) -> None:
        if self.payee.best is not None:
            assert self.payee.best.encode() in self.credited
            assert self.payee.best.amount == self.payee.paid


TestChannelPair = ChannelPair.TestCase
