"""A signed TRON transaction as tronpy sends it: read, identified by its txID, its signers.

The JSON of ``wallet/getsignweight`` and ``wallet/broadcasttransaction`` is read into
protobuf messages (:mod:`.protobuf`) and ``Transaction.raw`` is encoded as java-tron
encodes it: the txID is its SHA-256, the hash every signature is made over (a 65-byte
secp256k1 signature ``r ‖ s ‖ v``, ``v`` 0/1 or 27/28). The ``txID`` field a client
sends is ignored, as java-tron ignores it. One contract per transaction, of the three
kinds the node executes: ``TransferContract``, ``TriggerSmartContract`` and
``CreateSmartContract``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coincurve import PublicKey

from cdn_edge.ledger.tron_node.protobuf import (
    INT32,
    BadMessage,
    Msg,
    encode,
    length_delimited,
    parse,
    to_json,
    varint_field,
)
from requester.protocol import TronAddress
from requester.protocol.payment_domain import keccak256

CONTRACT_TYPES = {"TransferContract": 1, "CreateSmartContract": 30, "TriggerSmartContract": 31}
"""The contract kinds the node executes, with their ``ContractType`` numbers."""
TYPE_URL = "type.googleapis.com/protocol."
CONTRACT_FIELD = 11
"""``Transaction.raw.contract``: written between the raw fields below and above it."""


class Unsupported(BadMessage):
    """A contract kind this node does not execute (TRC-10, staking, permissions...)."""


class BadSignature(ValueError):
    """A signature that recovers no key; the text is java-tron's reason."""


@dataclass(frozen=True)
class Transaction:
    raw: Msg
    """``Transaction.raw`` without its contract: expiration, ref block, fee_limit..."""
    kind: str
    params: Msg
    """The contract's own message (``TransferContract``, ...)."""
    permission_id: int
    signatures: tuple[bytes, ...]
    raw_bytes: bytes
    txid: bytes

    @property
    def owner(self) -> bytes:
        """The 21-byte owner address: who signs, pays, and is ``msg.sender``."""
        return bytes(self.params.get("owner_address", b""))

    @property
    def expiration(self) -> int:
        return int(self.raw.get("expiration", 0))

    @property
    def fee_limit(self) -> int:
        return int(self.raw.get("fee_limit", 0))

    def to_json(self, visible: bool) -> Msg:
        """The transaction as java-tron prints it (``printTransactionToJSON``)."""
        raw = to_json("Transaction.raw", self.raw, visible)
        contract: Msg = {
            "parameter": {"value": to_json(self.kind, self.params, visible),
                          "type_url": TYPE_URL + self.kind},
            "type": self.kind,
        }  # fmt: skip
        if self.permission_id:
            contract["Permission_id"] = self.permission_id
        raw["contract"] = [contract]
        shown: Msg = {"visible": visible, "txID": self.txid.hex(), "raw_data": raw,
                      "raw_data_hex": self.raw_bytes.hex()}  # fmt: skip
        if self.signatures:
            shown["signature"] = [s.hex() for s in self.signatures]
        if self.kind == "CreateSmartContract":
            shown["contract_address"] = created_address(self).hex()
        return shown


def read_transaction(body: object, visible: bool) -> Transaction:
    """The transaction in a request body (``raw_data`` and ``signature``), or BadMessage."""
    if not isinstance(body, Mapping) or not isinstance(body.get("raw_data"), Mapping):
        raise BadMessage("the transaction has no raw_data object")
    raw_data = body["raw_data"]
    contracts = raw_data.get("contract")
    if not isinstance(contracts, list) or len(contracts) != 1:
        raise BadMessage("raw_data.contract must hold exactly one contract")
    contract = contracts[0]
    if not isinstance(contract, Mapping) or not isinstance(contract.get("parameter"), Mapping):
        raise BadMessage("raw_data.contract[0] has no parameter object")
    kind = contract.get("type")
    if kind not in CONTRACT_TYPES:
        raise Unsupported(f"contract type {str(kind)[:60]!r} is not executed by this node "
                          f"(it runs {', '.join(CONTRACT_TYPES)})")  # fmt: skip
    params = parse(kind, contract["parameter"].get("value"), visible, "parameter.value")
    owner = params.get("owner_address", b"")
    if len(owner) != 21 or owner[0] != 0x41:
        raise BadMessage("parameter.value.owner_address is not a TRON address")
    permission_id = contract.get("Permission_id", 0)
    if isinstance(permission_id, bool) or not isinstance(permission_id, int):
        raise BadMessage("Permission_id must be an integer")
    if not INT32[0] <= permission_id <= INT32[1]:
        raise BadMessage("Permission_id is out of range")
    raw = parse("Transaction.raw", raw_data, visible, "raw_data")
    body_bytes = (
        encode("Transaction.raw", raw, range(1, CONTRACT_FIELD))
        + length_delimited(CONTRACT_FIELD, _contract_bytes(kind, params, permission_id))
        + encode("Transaction.raw", raw, range(CONTRACT_FIELD + 1, 1 << 29))
    )
    return Transaction(raw, kind, params, permission_id, _signatures(body.get("signature")),
                       body_bytes, hashlib.sha256(body_bytes).digest())  # fmt: skip


def _contract_bytes(kind: str, params: Msg, permission_id: int) -> bytes:
    value = encode(kind, params)
    any_ = length_delimited(1, (TYPE_URL + kind).encode())
    any_ += length_delimited(2, value) if value else b""
    return (
        varint_field(1, CONTRACT_TYPES[kind])
        + length_delimited(2, any_)
        + varint_field(5, permission_id)
    )


def _signatures(value: Any) -> tuple[bytes, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise BadMessage("signature must be a list of hex strings")
    try:
        return tuple(bytes.fromhex(s) for s in value)
    except ValueError:
        raise BadMessage("signature must be hex") from None


def signer(txid: bytes, signature: bytes) -> TronAddress:
    """The address whose key made ``signature`` over ``txid``, or BadSignature."""
    if len(signature) < 65:
        raise BadSignature(f"Signature size is {len(signature)}")
    v = signature[64] - 27 if signature[64] >= 27 else signature[64]
    if v not in (0, 1, 2, 3):
        raise BadSignature(f"Header byte out of range: {signature[64]}")
    try:
        public = PublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), txid, hasher=None
        )
    except Exception as exc:  # coincurve raises a bare Exception for unrecoverable input
        raise BadSignature(f"signature recovers no key: {exc}") from None
    return TronAddress.of_public_key(public)


def created_address(tx: Transaction) -> bytes:
    """TRON's address for a contract a ``CreateSmartContract`` makes: ``0x41`` and the
    last 20 bytes of keccak256(txID ‖ owner address), not the EVM's CREATE rule."""
    return b"\x41" + keccak256(tx.txid + tx.owner)[12:]
