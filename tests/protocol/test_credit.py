"""Credit spends: signed by the payer, for one chunk, fresh, and honoured once.

Issue 13, defect 3: a bare channel id used to spend a channel's credit, and
channel ids are public. These tests pin the message (round trip, refusals, no
error but our own) and the payee's checks; tests/edge/test_edge_credit.py
runs them against a real edge.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from requester.protocol import (
    CREDIT_HEADER,
    ChannelTerms,
    CreditGuard,
    CreditNotPayer,
    CreditSpend,
    CreditSpendExpired,
    CreditSpendReplayed,
    MalformedMessage,
    PayerKey,
    PaymentDomain,
    ProtocolError,
    WrongBinding,
    b64url_encode,
    check_credit_spend,
)
from requester.protocol.codec import U64_MAX
from requester.protocol.credit import CREDIT_MAGIC, CREDIT_SPEND_SIZE, CREDIT_WINDOW
from requester.protocol.manifest import MAX_CHUNKS
from requester.protocol.voucher import VOUCHER_SIZE
from tests.conftest import NOW, OTHER_PAYER_SECRET, PAYEE_SECRET, PAYER_SECRET, make_terms
from tests.protocol.support import flips

PAYER = PayerKey(PAYER_SECRET)
PAYEE = PayerKey(PAYEE_SECRET)
STRANGER = PayerKey(OTHER_PAYER_SECRET)
TERMS: ChannelTerms = make_terms(PAYER, PAYEE)
CONTENT = bytes(range(32))


def spend(key: PayerKey = PAYER, *, index: int = 3, issued_at: int = NOW, nonce: int = 1,
          terms: ChannelTerms = TERMS, content: bytes = CONTENT) -> CreditSpend:  # fmt: skip
    return CreditSpend.create(
        key, domain=terms.domain, channel_id=terms.channel_id, content_id=content, index=index,
        issued_at=issued_at, nonce=nonce.to_bytes(16, "big"),
    )  # fmt: skip


def test_size_header_and_layout() -> None:
    s = spend()
    encoded = s.encode()
    assert len(encoded) == CREDIT_SPEND_SIZE == 189
    assert encoded[:4] == CREDIT_MAGIC == b"ATD\x01"
    assert CreditSpend.from_header(s.to_header()) == s
    assert CREDIT_HEADER == "Atlas-Credit"
    assert CREDIT_SPEND_SIZE != VOUCHER_SIZE  # a voucher can never pass for a spend


@settings(max_examples=60, deadline=None)
@given(
    chain_id=st.integers(0, U64_MAX), contract=st.binary(min_size=20, max_size=20),
    channel=st.binary(min_size=32, max_size=32), content=st.binary(min_size=32, max_size=32),
    index=st.integers(0, MAX_CHUNKS - 1), issued_at=st.integers(0, U64_MAX),
    nonce=st.binary(min_size=16, max_size=16), signer=st.sampled_from([PAYER, PAYEE, STRANGER]),
)  # fmt: skip
def test_round_trip_recovers_the_signer(
    chain_id: int, contract: bytes, channel: bytes, content: bytes, index: int,
    issued_at: int, nonce: bytes, signer: PayerKey,
) -> None:  # fmt: skip
    s = CreditSpend.create(
        signer, domain=PaymentDomain(chain_id, contract), channel_id=channel, content_id=content,
        index=index, issued_at=issued_at, nonce=nonce,
    )  # fmt: skip
    decoded = CreditSpend.decode(s.encode())
    assert decoded == s
    assert decoded.signer == signer.address
    assert decoded.encode() == s.encode()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_our_own_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        CreditSpend.decode(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=CREDIT_SPEND_SIZE - 4, max_size=CREDIT_SPEND_SIZE - 4))
def test_right_size_right_magic_raises_only_our_own_error(body: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        CreditSpend.decode(CREDIT_MAGIC + body)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_header_text_raises_only_our_own_error(text: str) -> None:
    with contextlib.suppress(ProtocolError):
        CreditSpend.from_header(text)


def test_out_of_range_fields_are_refused() -> None:
    with pytest.raises(MalformedMessage):
        spend(index=MAX_CHUNKS)
    with pytest.raises(MalformedMessage):
        spend(issued_at=U64_MAX + 1)
    with pytest.raises(MalformedMessage):
        CreditSpend.decode(spend().encode() + b"\0")
    encoded = spend().encode()  # the index is the u32 at bytes 96..99
    too_far = encoded[:96] + MAX_CHUNKS.to_bytes(4, "big") + encoded[100:]
    with pytest.raises(MalformedMessage):
        CreditSpend.decode(too_far)
    with pytest.raises(MalformedMessage):
        CreditSpend.from_header(b64url_encode(bytes(CREDIT_SPEND_SIZE + 1)))


def test_every_changed_byte_is_refused_for_the_channel() -> None:
    """No one-byte change passes: it breaks the decode, or the checks against the channel."""
    original = spend()
    check_credit_spend(original, TERMS, CONTENT, 3, NOW)
    for index, mutated in flips(original.encode()):
        with pytest.raises(ProtocolError):
            check_credit_spend(CreditSpend.decode(mutated), TERMS, CONTENT, 3, NOW)
            pytest.fail(f"byte {index} changed and the spend still passes")


def test_a_stranger_knowing_the_channel_id_gets_402() -> None:
    forged = spend(STRANGER)
    with pytest.raises(CreditNotPayer) as refused:
        check_credit_spend(forged, TERMS, CONTENT, 3, NOW)
    assert refused.value.status == 402 and refused.value.code == "credit_not_payer"


@pytest.mark.parametrize(
    ("made", "content", "index"),
    [
        (spend(terms=make_terms(PAYER, STRANGER)), CONTENT, 3),  # another channel
        (spend(), bytes(32), 3),  # another content
        (spend(), CONTENT, 4),  # another chunk
    ],
)
def test_a_spend_for_something_else_is_wrong_binding(
    made: CreditSpend, content: bytes, index: int
) -> None:
    with pytest.raises(WrongBinding):
        check_credit_spend(made, TERMS, content, index, NOW)


def test_only_a_fresh_spend_passes() -> None:
    for issued_at in (NOW - CREDIT_WINDOW, NOW + CREDIT_WINDOW):
        check_credit_spend(spend(issued_at=issued_at), TERMS, CONTENT, 3, NOW)
    for issued_at in (NOW - CREDIT_WINDOW - 1, NOW + CREDIT_WINDOW + 1, 0):
        with pytest.raises(CreditSpendExpired) as refused:
            check_credit_spend(spend(issued_at=issued_at), TERMS, CONTENT, 3, NOW)
        assert refused.value.status == 402


def test_the_guard_honours_each_spend_once() -> None:
    guard = CreditGuard(paid=0)
    first, second = spend(nonce=1), spend(nonce=2)
    guard.check_spend(first, NOW)
    guard.record_spend(first, NOW)
    with pytest.raises(CreditSpendReplayed) as replayed:
        guard.check_spend(first, NOW + 5)
    assert replayed.value.status == 409
    guard.check_spend(second, NOW + 5)  # same chunk, new nonce: a new order


def test_the_guard_forgets_only_what_the_clock_refuses() -> None:
    guard = CreditGuard(paid=0)
    old = spend(nonce=1)
    guard.record_spend(old, NOW)
    later = NOW + 2 * CREDIT_WINDOW + 1
    guard.check_spend(spend(nonce=2, issued_at=later), later)  # expires the old entry
    assert len(guard) == 0
    with pytest.raises(CreditSpendExpired):  # and the old spend is refused by its time
        check_credit_spend(old, TERMS, CONTENT, 3, later)


def test_the_guard_is_bounded_and_never_readmits_what_it_dropped() -> None:
    guard = CreditGuard(paid=0, limit=16)
    spends = [spend(nonce=n, issued_at=NOW + n // 4) for n in range(64)]
    for s in spends:
        guard.check_spend(s, NOW)
        guard.record_spend(s, NOW)
    assert len(guard) <= 16
    for s in spends:
        with pytest.raises(CreditSpendReplayed):
            guard.check_spend(s, NOW)


def test_vouchers_spend_credit_once_and_never_below_the_starting_floor() -> None:
    guard = CreditGuard(paid=100, limit=8)
    assert guard.voucher_used(100)  # paid before the guard started: unknown, so used
    for amount in range(101, 140):
        assert not guard.voucher_used(amount)
        guard.record_voucher(amount)
        assert guard.voucher_used(amount)
    assert len(guard) <= 8
    assert all(guard.voucher_used(amount) for amount in range(90, 140))
    assert not guard.voucher_used(140)
