"""tests/vectors/credit.json against the code, and the digest rebuilt from docs/protocol.md.

The same three checks as test_vectors.py gives the other messages: rebuild from
the recorded inputs, decode the recorded bytes, and recompute the layout and
the EIP-712 digest by hand (keccak, ``int.to_bytes``, coincurve), not with the
code under test.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from coincurve import PublicKey
from Crypto.Hash import keccak

from requester.protocol import CreditSpend, PayerKey, PaymentDomain

CREDIT = json.loads((Path(__file__).parents[1] / "vectors" / "credit.json").read_text())
SPENDS = [pytest.param(v, id=v["name"]) for v in CREDIT["spends"]]

# Spelled out from docs/protocol.md section 6.2, not taken from the code.
CREDIT_TYPE = (
    b"CreditSpend(bytes32 channelId,bytes32 contentId,uint32 index,uint64 issuedAt,uint128 nonce)"
)
EIP712_DOMAIN_TYPE = (
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


def k256(data: bytes) -> bytes:
    return bytes(keccak.new(data=data, digest_bits=256).digest())


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def test_the_file_is_complete() -> None:
    assert [v["name"] for v in CREDIT["spends"]] == [
        "local-chunk-0", "local-chunk-2", "tron-mainnet-extremes",
    ]  # fmt: skip


@pytest.mark.parametrize("vector", SPENDS)
def test_digest_layout_and_signer_by_hand(vector: Any) -> None:
    i = vector["inputs"]
    contract = bytes.fromhex(i["contract"])
    separator = k256(
        k256(EIP712_DOMAIN_TYPE) + k256(b"Atlas") + k256(b"1") + word(i["chain_id"])
        + bytes(12) + contract
    )  # fmt: skip
    assert separator.hex() == vector["domain_separator"]
    nonce = bytes.fromhex(i["nonce"])
    struct_hash = k256(
        k256(CREDIT_TYPE) + bytes.fromhex(i["channel_id"]) + bytes.fromhex(i["content_id"])
        + word(i["index"]) + word(int(i["issued_at"])) + word(int.from_bytes(nonce, "big"))
    )  # fmt: skip
    assert struct_hash.hex() == vector["struct_hash"]
    digest = k256(b"\x19\x01" + separator + struct_hash)
    assert digest.hex() == vector["digest"]
    signature = bytes.fromhex(vector["signature"])
    public = PublicKey.from_signature_and_message(
        signature[:64] + bytes([signature[64] - 27]), digest, hasher=None
    )
    assert k256(public.format(compressed=False)[1:])[12:].hex() == i["payer"]["evm"]
    encoded = (
        b"ATD\x01" + i["chain_id"].to_bytes(8, "big") + contract
        + bytes.fromhex(i["channel_id"]) + bytes.fromhex(i["content_id"])
        + i["index"].to_bytes(4, "big") + int(i["issued_at"]).to_bytes(8, "big") + nonce
        + signature
    )  # fmt: skip
    assert len(encoded) == 189
    assert encoded.hex() == vector["encoded"]
    assert base64.urlsafe_b64encode(encoded).rstrip(b"=").decode() == vector["header"]


@pytest.mark.parametrize("vector", SPENDS)
def test_rebuilds_from_inputs(vector: Any) -> None:
    i = vector["inputs"]
    spend = CreditSpend.create(
        PayerKey(bytes.fromhex(i["payer_secret"])),
        domain=PaymentDomain(i["chain_id"], bytes.fromhex(i["contract"])),
        channel_id=bytes.fromhex(i["channel_id"]), content_id=bytes.fromhex(i["content_id"]),
        index=i["index"], issued_at=int(i["issued_at"]), nonce=bytes.fromhex(i["nonce"]),
    )  # fmt: skip
    assert spend.struct_hash().hex() == vector["struct_hash"]
    assert spend.digest().hex() == vector["digest"]
    assert spend.signature.hex() == vector["signature"]
    assert spend.encode().hex() == vector["encoded"]
    assert spend.to_header() == vector["header"]


@pytest.mark.parametrize("vector", SPENDS)
def test_decodes_to_inputs(vector: Any) -> None:
    i = vector["inputs"]
    spend = CreditSpend.from_header(vector["header"])
    assert spend == CreditSpend.decode(bytes.fromhex(vector["encoded"]))
    assert spend.domain == PaymentDomain(i["chain_id"], bytes.fromhex(i["contract"]))
    assert (spend.channel_id.hex(), spend.content_id.hex()) == (i["channel_id"], i["content_id"])
    assert (spend.index, spend.issued_at, spend.nonce.hex()) == (
        i["index"], int(i["issued_at"]), i["nonce"],
    )  # fmt: skip
    assert spend.signer.base58() == i["payer"]["base58"]
