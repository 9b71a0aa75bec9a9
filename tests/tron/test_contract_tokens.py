"""AtlasChannels with TRON-style tokens, and what each operation costs.

Token answers are accepted only as success with no data or ``true``; deposits are
checked by the contract's balance delta; a token calling back during a transfer
meets the reentrancy lock. Gas is measured as the first transaction of a block
(cold state, see ``Chain.gas``) and stands for TRON energy: execution only, without
the 21000 + calldata intrinsic gas TRON does not charge, before refunds.
"""

from __future__ import annotations

import pytest

from requester.protocol.payment_domain import keccak256
from tests.tron.contract_evm import (
    CHANNELS,
    DAY,
    DEPLOYER,
    NOW,
    PAYEE,
    PAYER,
    UNIT,
    Chain,
    Reverted,
    calldata,
    intrinsic_gas,
)

CEILINGS = {"open": 130_000, "redeem": 60_000, "reclaim": 40_000}
REENTRANCY = keccak256(b"Reentrancy()")[:4]


def test_a_token_that_returns_nothing_is_accepted() -> None:
    chain = Chain("NoReturnToken")
    chain.fund()
    cid = chain.open(3 * UNIT)
    chain.send(PAYER, "topUpTo", cid, 4 * UNIT, NOW + DAY)
    chain.redeem(cid, UNIT)
    chain.at(NOW + DAY)
    chain.send(PAYER, "reclaim", cid)
    assert (chain.balance(PAYER), chain.balance(PAYEE)) == (9 * UNIT, UNIT)


def test_a_token_that_returns_false_is_refused_and_nothing_changes() -> None:
    chain = Chain("FalseReturnToken")
    chain.fund(amount=2 * UNIT)
    with pytest.raises(Reverted) as info:
        chain.open(3 * UNIT)
    assert info.value.error == ("InsufficientFunds", 2 * UNIT, 2**256 - 1, 3 * UNIT)
    cid = chain.read("channelIdOf", PAYER, PAYEE, bytes(32))
    assert chain.channel(cid)["status"] == 0
    assert chain.balance(PAYER) == 2 * UNIT
    assert chain.open(2 * UNIT) == cid  # its `true` is accepted


def test_a_fee_on_transfer_token_is_refused() -> None:
    chain = Chain("FeeOnTransferToken")
    chain.fund()
    with pytest.raises(Reverted) as info:
        chain.open(3 * UNIT)
    assert info.value.error == ("FeeOnTransfer", 3 * UNIT * 99 // 100, 3 * UNIT)
    assert chain.balance(PAYER) == 10 * UNIT


def test_a_reentrant_token_changes_nothing() -> None:
    chain = Chain("ReentrantToken")
    chain.fund()
    cid = chain.read("channelIdOf", PAYER, PAYEE, bytes(32))

    def arm(amount: int) -> None:
        """The token's next transfer calls redeem(cid, amount) with the payer's voucher."""
        voucher = chain.voucher(cid, amount)
        redeem = calldata(CHANNELS, "redeem", (cid, amount, voucher.signature))
        chain.send(DEPLOYER, "arm", chain.channels, redeem)

    arm(UNIT)  # during open's transferFrom the channel is already stored
    chain.open(3 * UNIT)
    assert chain.read("lastCallOk") is False and chain.read("lastCallReturn") == REENTRANCY
    assert (chain.channel(cid)["redeemed"], chain.balance(PAYEE)) == (0, 0)
    arm(2 * UNIT)  # during redeem's payout, a higher voucher
    chain.redeem(cid, UNIT)
    assert chain.read("lastCallOk") is False and chain.read("lastCallReturn") == REENTRANCY
    assert (chain.channel(cid)["redeemed"], chain.balance(PAYEE)) == (UNIT, UNIT)
    assert chain.read("callbacks") == 2


def test_energy_per_operation_is_under_the_ceilings() -> None:
    chain = Chain()
    chain.fund()
    opening = (PAYEE, 3 * UNIT, NOW + DAY, bytes(32))
    cid = chain.read("channelIdOf", PAYER, PAYEE, bytes(32))
    steps = [
        ("open", PAYER, opening),  # the contract's first deposit: a new balance slot
        ("redeem", PAYER, (cid, UNIT // 4, chain.voucher(cid, UNIT // 4).signature)),
        ("redeem", PAYER, (cid, UNIT // 2, chain.voucher(cid, UNIT // 2).signature)),
        ("topUpTo", PAYER, (cid, 4 * UNIT, NOW + 2 * DAY)),
        ("open", PAYER, (PAYEE, 3 * UNIT, NOW + DAY, b"\x01" * 32)),
        ("requestClose", PAYER, (cid,)),
        ("reclaim", PAYER, (cid,)),
    ]
    figures = []
    for name, sender, args in steps:
        if name == "reclaim":
            chain.at(chain.channel(cid)["expiresAt"])
        execution, used = chain.gas(sender, name, *args)
        chain.send(sender, name, *args)
        figures.append((name, execution, used))
        assert execution <= CEILINGS.get(name, 10**6), (name, execution)
    print(
        "".join(f"\n{name:13} execution {ex:7,}, gas used {used:7,}" for name, ex, used in figures)
    )

    # Too little gas for an open halts it, and nothing changes.
    data = calldata(CHANNELS, "open", (PAYEE, UNIT, NOW + 3 * DAY, b"\x02" * 32))
    with pytest.raises(RuntimeError, match="OutOfGas"):
        chain.evm.message_call(PAYER, chain.channels, data, gas=intrinsic_gas(data) + 50_000)
    chain.check_books()
    assert chain.channel(chain.read("channelIdOf", PAYER, PAYEE, b"\x02" * 32))["status"] == 0
