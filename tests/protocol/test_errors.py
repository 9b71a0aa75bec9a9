"""Every refusal carries the HTTP status and RFC 9457 problem body its class promises."""

from __future__ import annotations

import pytest

from requester.protocol import (
    ChannelClosed,
    ChannelExpired,
    Conflict,
    CreditNotPayer,
    CreditProofRequired,
    CreditSpendExpired,
    CreditSpendReplayed,
    DepositExceeded,
    InvalidSignature,
    MalformedMessage,
    PaymentRequired,
    ProtocolError,
    QuoteExpired,
    StaleVoucher,
    Underpaid,
    WrongBinding,
)
from requester.protocol.errors import AdvertExpired

EXPECTED: list[tuple[type[ProtocolError], int, str, type[ProtocolError]]] = [
    (MalformedMessage, 400, "malformed_message", ProtocolError),
    (InvalidSignature, 400, "invalid_signature", ProtocolError),
    (WrongBinding, 400, "wrong_binding", ProtocolError),
    (AdvertExpired, 400, "advert_expired", ProtocolError),
    (PaymentRequired, 402, "payment_required", ProtocolError),
    (Underpaid, 402, "underpaid", PaymentRequired),
    (DepositExceeded, 402, "deposit_exceeded", PaymentRequired),
    (ChannelExpired, 402, "channel_expired", PaymentRequired),
    (QuoteExpired, 402, "quote_expired", PaymentRequired),
    (CreditProofRequired, 402, "credit_proof_required", PaymentRequired),
    (CreditNotPayer, 402, "credit_not_payer", PaymentRequired),
    (CreditSpendExpired, 402, "credit_spend_expired", PaymentRequired),
    (Conflict, 409, "conflict", ProtocolError),
    (StaleVoucher, 409, "stale_voucher", Conflict),
    (ChannelClosed, 409, "channel_closed", Conflict),
    (CreditSpendReplayed, 409, "credit_spend_replayed", Conflict),
]


def _all_subclasses(cls: type[ProtocolError]) -> set[type[ProtocolError]]:
    found: set[type[ProtocolError]] = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


def test_every_subclass_is_listed() -> None:
    """A new refusal must be added here, with its status, before it ships."""
    protocol_classes = {
        c for c in _all_subclasses(ProtocolError) if c.__module__.startswith("requester.protocol")
    }
    assert protocol_classes == {cls for cls, *_ in EXPECTED}


@pytest.mark.parametrize(("cls", "status", "code", "parent"), EXPECTED)
def test_status_code_and_hierarchy(
    cls: type[ProtocolError], status: int, code: str, parent: type[ProtocolError]
) -> None:
    assert cls.status == status
    assert cls.code == code
    assert cls.__bases__ == (parent,)
    assert issubclass(cls, Exception)


@pytest.mark.parametrize(("cls", "status", "code", "parent"), EXPECTED)
def test_problem_shape(
    cls: type[ProtocolError], status: int, code: str, parent: type[ProtocolError]
) -> None:
    error = cls("something precise went wrong")
    assert error.message == "something precise went wrong"
    assert str(error) == "something precise went wrong"
    assert error.problem() == {
        "type": f"https://atlas.invalid/problems/{code}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": "something precise went wrong",
    }


def test_base_class_defaults() -> None:
    error = ProtocolError("x")
    assert error.status == 400
    assert error.problem()["type"] == "https://atlas.invalid/problems/protocol_error"


def test_catch_by_meaning() -> None:
    with pytest.raises(PaymentRequired):
        raise DepositExceeded("more deposit")
    with pytest.raises(Conflict):
        raise StaleVoucher("old")
    assert not issubclass(StaleVoucher, PaymentRequired)
    assert not issubclass(Underpaid, Conflict)
