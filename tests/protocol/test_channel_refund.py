"""A payee gives back as credit what it charged for something it did not send (a replica
edge charges a chunk's largest price before buying it, then keeps only the actual price)."""

from __future__ import annotations

from requester.protocol import MalformedMessage, PayeeChannel, Serve
from tests.conftest import NOW
from tests.protocol.test_channel import PAYER, TERMS, refused, voucher_bytes


def test_a_refund_returns_charged_credit_and_never_more() -> None:
    payee = PayeeChannel(TERMS)
    payee.charge(100, voucher_bytes(100), NOW)
    payee.refund(70)
    assert (payee.paid, payee.consumed, payee.credit) == (100, 30, 70)
    assert payee.charge(70, None, NOW) == [Serve(70)]  # the credit pays the next chunk
    refused(lambda: payee.refund(101), MalformedMessage, 400, "outside 0..100")
    refused(lambda: payee.refund(-1), MalformedMessage, 400)
    payee.refund(100)
    assert (payee.consumed, payee.credit) == (0, 100)
    assert payee.best is not None and payee.best.payer == PAYER.address
