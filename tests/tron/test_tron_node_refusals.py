"""What ``atlas ledger tron-node`` refuses at broadcast, with java-tron's codes and shapes,
and that a refused transaction changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from tronpy import Tron
from tronpy.exceptions import (
    BadSignature,
    TaposError,
    TransactionError,
    UnknownError,
    ValidationError,
)
from tronpy.providers import HTTPProvider
from tronpy.tron import Transaction

from tests.processes import Running, start_tron_node
from tests.tron.node_client import address, funded, key


@pytest.fixture(scope="module")
def node() -> Iterator[Running]:
    running = start_tron_node()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tron(node: Running) -> Tron:
    return Tron(HTTPProvider(node.url))


def transfer(tron: Tron, sender: str, sun: int = 1_000_000, **changes: Any) -> Transaction:
    """An unsigned TRX transfer to a fixed address; ``changes`` edit its raw data (the node
    computes the new txID, as java-tron's getsignweight does)."""
    built = tron.trx.transfer(sender, address(key("refusals-to")), sun).build()
    if not changes:
        return built
    raw = {**built._raw_data, **changes}
    return Transaction(raw, client=tron)


def broadcast(tron: Tron, txn: Transaction) -> dict[str, Any]:
    answer: dict[str, Any] = tron.provider.make_request(
        "wallet/broadcasttransaction", txn.to_json()
    )
    return answer


def message(answer: dict[str, Any]) -> str:
    return bytes.fromhex(answer["message"]).decode()


def test_duplicate_broadcast_is_refused(node: Running, tron: Tron) -> None:
    sender = funded(node, "dup", trx=10)
    txn = transfer(tron, address(sender)).sign(sender)
    assert broadcast(tron, txn) == {"result": True, "txid": txn.txid}
    again = broadcast(tron, txn)
    assert (again["result"], again["code"], again["txid"]) == (
        False,
        "DUP_TRANSACTION_ERROR",
        txn.txid,
    )
    assert message(again) == "Dup transaction."
    with pytest.raises(UnknownError, match="Dup transaction"):
        txn.broadcast()
    assert tron.get_account_balance(address(sender)) == 9


def test_wrong_or_missing_signature_is_refused(node: Running, tron: Tron) -> None:
    sender, thief = funded(node, "victim", trx=10), key("thief")
    txn = transfer(tron, address(sender))
    txn.set_signature([thief.sign_msg_hash(bytes.fromhex(txn.txid)).hex()])
    answer = broadcast(tron, txn)
    assert answer["code"] == "SIGERROR" and address(thief) in message(answer)
    with pytest.raises(BadSignature, match="not contained of permission"):
        txn.broadcast()
    unsigned = transfer(tron, address(sender))
    assert message(broadcast(tron, unsigned)) == "Validate signature error: miss sig or contract"
    short = transfer(tron, address(sender)).set_signature(["00" * 64])
    assert message(broadcast(tron, short)) == "Validate signature error: Signature size is 64"
    assert tron.get_account_balance(address(sender)) == 10


def test_expired_far_or_unanchored_transactions_are_refused(node: Running, tron: Tron) -> None:
    sender = funded(node, "timing", trx=10)
    now = tron.get_latest_block()["block_header"]["raw_data"]["timestamp"]
    for expiration in (now - 1000, now + 25 * 3600 * 1000):
        txn = transfer(tron, address(sender), expiration=expiration)
        txn.set_signature([sender.sign_msg_hash(bytes.fromhex(txn.txid)).hex()])
        with pytest.raises(TransactionError, match="Transaction expired"):
            txn.broadcast()
    unanchored = transfer(tron, address(sender), ref_block_hash="00" * 8).sign(sender)
    with pytest.raises(TaposError, match="Tapos check error"):
        unanchored.broadcast()
    assert tron.get_account_balance(address(sender)) == 10


def test_invalid_contracts_are_refused_before_a_block(node: Running, tron: Tron) -> None:
    sender = funded(node, "invalid", trx=1)
    height = tron.get_latest_block_number()
    for sun, reason in (
        (5_000_000, "balance is not sufficient"),
        (0, "Amount must be greater than 0"),
    ):
        with pytest.raises(ValidationError, match=reason):
            transfer(tron, address(sender), sun).sign(sender).broadcast()
    stranger = key("stranger")
    with pytest.raises(ValidationError, match="no OwnerAccount"):
        transfer(tron, address(stranger)).sign(stranger).broadcast()
    token = tron.get_contract(str(node.ready["token"]))
    greedy = token.functions.transfer(address(stranger), 1).with_owner(address(sender))
    with pytest.raises(ValidationError, match="feeLimit must be >= 0 and <= 15000000000"):
        greedy.fee_limit(15_000_000_001).build().sign(sender).broadcast()
    assert tron.get_latest_block_number() <= height + 1  # at most an empty block, no transaction
    assert tron.get_account_balance(address(sender)) == Decimal(1)


def test_malformed_input_answers_like_java_tron(tron: Tron) -> None:
    bodies: list[dict[str, Any]] = [
        {"raw_data": {"contract": []}},
        {"raw_data": "x"},
        {"signature": 3},
    ]
    for body in bodies:
        answer = tron.provider.make_request("wallet/broadcasttransaction", body)
        assert set(answer) == {"Error"}
    weight = tron.provider.make_request("wallet/getsignweight", {"raw_data": {"contract": [
        {"type": "FreezeBalanceV2Contract", "parameter": {"value": {}}}]}})  # fmt: skip
    assert "not executed by this node" in weight["Error"]
