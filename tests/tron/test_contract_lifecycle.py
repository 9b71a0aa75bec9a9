"""AtlasChannels' rules, driven with vouchers the Python SDK signs.

Every transaction goes through ``Chain.send``, which checks after it (applied or
refused) that the contract holds exactly the sum of ``deposit - redeemed`` of its
open channels. Refusals are asserted as the decoded custom error and its arguments.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest

from requester.protocol import PaymentDomain, recover_signer
from tests.tron.contract_evm import (
    DAY,
    GRACE,
    NOW,
    PAYEE,
    PAYER,
    RELAYER,
    UNIT,
    Chain,
    Reverted,
)

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
YEAR = 365 * DAY


@contextmanager
def refused(*error: Any) -> Iterator[None]:
    """The block's transaction reverts with the custom error ``(name, *args)``."""
    with pytest.raises(Reverted) as info:
        yield
    assert info.value.error == error


@pytest.fixture
def chain() -> Chain:
    chain = Chain()
    chain.fund()
    return chain


def test_lifecycle_open_redeem_reclaim(chain: Chain) -> None:
    expires = NOW + DAY
    cid = chain.open(3 * UNIT, expires, salt=b"\x07" * 32)
    assert chain.channel(cid) == {
        "payer": PAYER, "expiresAt": expires, "payee": PAYEE, "openedAt": NOW,
        "deposit": 3 * UNIT, "redeemed": 0, "status": 1,
    }  # fmt: skip
    assert (chain.balance(PAYER), chain.balance(chain.channels)) == (7 * UNIT, 3 * UNIT)
    with refused("ChannelExists", cid):
        chain.open(1 * UNIT, expires, salt=b"\x07" * 32)

    chain.redeem(cid, UNIT // 4)  # anyone may submit it: the payee is paid
    assert (chain.balance(PAYEE), chain.balance(RELAYER)) == (UNIT // 4, 0)
    chain.redeem(cid, 6 * UNIT // 10)
    assert chain.balance(PAYEE) == 6 * UNIT // 10  # +0.35: the cumulative amount less 0.25
    for amount in (6 * UNIT // 10, UNIT // 2, 0):  # a replay or a lower voucher moves nothing
        with refused("AlreadyRedeemed", 6 * UNIT // 10):
            chain.redeem(cid, amount)

    elsewhere = chain.voucher(cid, UNIT, PaymentDomain(0xCD8690DC, chain.domain.contract))
    signer = recover_signer(
        replace(elsewhere, domain=chain.domain).digest(), elsewhere.signature, ""
    )
    with refused("InvalidSignature", "0x" + signer.evm.hex()):  # a Nile voucher, on mainnet
        chain.redeem(cid, UNIT, elsewhere.signature)
    sig = chain.voucher(cid, UNIT).signature
    high_s = sig[:32] + (SECP256K1_N - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big")
    with refused("HighOrZeroS"):
        chain.redeem(cid, UNIT, high_s + bytes([55 - sig[64]]))
    with refused("DepositExceeded", 3 * UNIT + 1, 3 * UNIT):
        chain.redeem(cid, 3 * UNIT + 1)
    with refused("NotExpired", expires):
        chain.send(PAYER, "reclaim", cid)

    chain.at(expires)
    with refused("ChannelExpired", cid, expires):
        chain.redeem(cid, UNIT)
    with refused("WrongBinding", PAYER):
        chain.send(PAYEE, "reclaim", cid)
    chain.send(PAYER, "reclaim", cid)
    assert chain.balance(PAYER) == 7 * UNIT + 24 * UNIT // 10  # 3 - 0.6 back
    assert chain.channel(cid)["status"] == 2
    with refused("AlreadyReclaimed", cid):
        chain.send(PAYER, "reclaim", cid)
    assert chain.balance(chain.channels) == 0


def test_open_refusals_change_nothing(chain: Chain) -> None:
    def opening(payee: str, deposit: int, expires: int) -> None:
        chain.send(PAYER, "open", payee, deposit, expires, bytes(32))

    with refused("MalformedMessage", "zero deposit"):
        opening(PAYEE, 0, NOW + DAY)
    with refused("MalformedMessage", "zero payee"):
        opening("0x" + "00" * 20, UNIT, NOW + DAY)
    with refused("MalformedMessage", "payee is the payer"):
        opening(PAYER, UNIT, NOW + DAY)
    for expires in (NOW, NOW + YEAR + 1):
        with refused("BadRequest", expires, NOW + 1, NOW + YEAR):
            opening(PAYEE, UNIT, expires)
    with refused("InsufficientFunds", 10 * UNIT, 2**256 - 1, 10 * UNIT + 1):
        opening(PAYEE, 10 * UNIT + 1, NOW + DAY)
    chain.send(PAYER, "approve", chain.channels, UNIT)
    with refused("InsufficientFunds", 10 * UNIT, UNIT, 2 * UNIT):
        opening(PAYEE, 2 * UNIT, NOW + DAY)
    assert chain.channel(chain.read("channelIdOf", PAYER, PAYEE, bytes(32)))["status"] == 0
    assert chain.balance(PAYER) == 10 * UNIT
    opening(PAYEE, UNIT, NOW + YEAR)  # the year is inclusive
    # The id binds the payer (msg.sender): the same payee and salt from another payer is new.
    chain.fund(PAYEE)
    chain.send(PAYEE, "open", PAYER, UNIT, NOW + DAY, bytes(32))


def test_top_up_to_takes_a_target_so_a_rebroadcast_charges_once(chain: Chain) -> None:
    cid = chain.open(3 * UNIT, NOW + DAY)
    for _ in range(2):
        chain.send(PAYER, "topUpTo", cid, 4 * UNIT, NOW + 2 * DAY)
        assert (chain.balance(PAYER), chain.channel(cid)["deposit"]) == (6 * UNIT, 4 * UNIT)
    assert chain.channel(cid)["expiresAt"] == NOW + 2 * DAY
    with refused("MalformedMessage", "new deposit below the deposit"):
        chain.send(PAYER, "topUpTo", cid, 3 * UNIT, NOW + 2 * DAY)
    with refused("BadRequest", NOW + DAY, NOW + 2 * DAY, NOW + YEAR):  # shortening
        chain.send(PAYER, "topUpTo", cid, 5 * UNIT, NOW + DAY)
    with refused("BadRequest", NOW + YEAR + 1, NOW + 2 * DAY, NOW + YEAR):
        chain.send(PAYER, "topUpTo", cid, 5 * UNIT, NOW + YEAR + 1)
    with refused("WrongBinding", PAYER):
        chain.send(RELAYER, "topUpTo", cid, 5 * UNIT, NOW + 2 * DAY)
    with refused("NotFound", b"\x01" * 32):
        chain.send(PAYER, "topUpTo", b"\x01" * 32, 5 * UNIT, NOW + 2 * DAY)
    chain.redeem(cid, 35 * UNIT // 10)  # the topped-up deposit is redeemable
    chain.at(NOW + 2 * DAY)
    with refused("ChannelExpired", cid, NOW + 2 * DAY):
        chain.send(PAYER, "topUpTo", cid, 5 * UNIT, NOW + 3 * DAY)


def test_request_close_leaves_the_payee_the_grace(chain: Chain) -> None:
    far, near = chain.open(UNIT, NOW + 30 * DAY), chain.open(UNIT, NOW + 3600, salt=b"\x01" * 32)
    with refused("WrongBinding", PAYER):
        chain.send(PAYEE, "requestClose", far)
    chain.at(NOW + 10)
    chain.send(PAYER, "requestClose", far)
    chain.send(PAYER, "requestClose", near)  # already sooner than now + grace: unchanged
    assert chain.channel(far)["expiresAt"] == NOW + 10 + GRACE
    assert chain.channel(near)["expiresAt"] == NOW + 3600
    chain.at(NOW + 10 + GRACE - 1)
    chain.redeem(far, UNIT // 2)
    chain.at(NOW + 10 + GRACE)
    with refused("ChannelExpired", far, NOW + 10 + GRACE):
        chain.send(PAYER, "requestClose", far)
    chain.send(PAYER, "reclaim", far)
    assert chain.balance(PAYER) == 8 * UNIT + UNIT // 2


def test_signatures_are_65_bytes_low_s_v27_or_28_by_the_payer(chain: Chain) -> None:
    cid = chain.open()
    sig = chain.voucher(cid, UNIT).signature
    cases = {
        sig[:64]: ("BadSignatureLength", 64),
        sig + b"\x00": ("BadSignatureLength", 66),
        sig[:32] + bytes(32) + sig[64:]: ("HighOrZeroS",),
        sig[:64] + b"\x00": ("BadV", 0),
        sig[:64] + b"\x1d": ("BadV", 29),
        bytes(32) + sig[32:]: ("InvalidSignature", "0x" + "00" * 20),
    }
    for bad, error in cases.items():
        with refused(*error):
            chain.redeem(cid, UNIT, bad)
    # The digest comes from storage: a voucher's amount, payee or channel cannot be swapped.
    other = chain.open(salt=b"\x02" * 32)
    for cid_, amount in ((cid, UNIT + 1), (other, UNIT)):
        with pytest.raises(Reverted) as info:
            chain.redeem(cid_, amount, sig)
        assert info.value.error is not None and info.value.error[0] == "InvalidSignature"
    chain.redeem(cid, UNIT, sig)
    with refused("NotFound", bytes(32)):
        chain.redeem(bytes(32), UNIT, sig)
