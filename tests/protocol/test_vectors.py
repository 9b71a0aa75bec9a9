"""The fixed test vectors in tests/vectors/ against the protocol code, byte for byte.

Three kinds of check, none of which uses ``tests/vectors/generate.py``:

- rebuild: each message built again from the recorded inputs with the public
  API gives exactly the recorded bytes, signatures and digests (Ed25519 and
  RFC 6979 secp256k1 are deterministic);
- decode: the recorded bytes decode (and verify) to the recorded fields;
- by hand: byte layouts, content ids, chunk-list digests and, above all, the
  EIP-712 voucher digest are recomputed here from ``docs/protocol.md`` with
  nothing but ``int.to_bytes``, SHA-256 and ``Crypto.Hash.keccak``, and the
  voucher signer is recovered with coincurve directly. That is the check that
  the spec and the code agree.

A failure here means the wire encoding drifted: that is a protocol version
change, not a vector to regenerate casually (see tests/vectors/README.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
from coincurve import PublicKey
from Crypto.Hash import keccak

from requester.protocol import (
    Asset,
    ContentPublisher,
    ContentVerifier,
    ManifestHead,
    NodeKey,
    PayerKey,
    PaymentDomain,
    Quote,
    Source,
    TorrentSource,
    TronAddress,
    UrlSource,
    Voucher,
    asset_by_code,
    asset_id,
    channel_id,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


MANIFEST = _load("manifest.json")
QUOTE = _load("quote.json")
VOUCHER = _load("voucher.json")

# Spelled out from docs/protocol.md section 6.1, not taken from the code.
EIP712_DOMAIN_TYPE = (
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
VOUCHER_TYPE = (
    b"Voucher(bytes32 channelId,address payer,address payee,bytes32 asset,uint256 amount)"
)
DOMAIN_NAME = b"Atlas"
DOMAIN_VERSION = b"1"
CHANNEL_ID_TAG = b"atlas.channel-id.v1"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
CHUNK_LIST_TAG = b"atlas.chunk-list.v1"


def keccak256(data: bytes) -> bytes:
    return bytes(keccak.new(data=data, digest_bits=256).digest())


def word_uint(value: int) -> bytes:
    """An ABI ``uint256`` word."""
    return value.to_bytes(32, "big")


def word_address(evm: bytes) -> bytes:
    """An ABI ``address`` word: 20 bytes left-padded with zeros."""
    assert len(evm) == 20
    return bytes(12) + evm


def word_bytes32(value: bytes) -> bytes:
    assert len(value) == 32
    return value


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def u128(n: int) -> bytes:
    return n.to_bytes(16, "big")


def text16(s: str) -> bytes:
    raw = s.encode("utf-8")
    return u16(len(raw)) + raw


def by_name(items: list[Any]) -> list[Any]:
    return [pytest.param(item, id=str(item["name"])) for item in items]


def source_from(data: Any) -> Source:
    if data["kind"] == "url":
        return UrlSource(data["url"])
    return TorrentSource(bytes.fromhex(data["infohash"]), data["path"])


def address_from(data: Any) -> TronAddress:
    address = TronAddress.parse(data["base58"])
    assert address.raw.hex() == data["hex"]
    assert address.evm.hex() == data["evm"]
    assert TronAddress.parse(data["hex"]) == address
    return address


def asset_from(data: Any) -> Asset:
    asset = asset_by_code(data["code"])
    assert (asset.symbol, asset.decimals, asset.uri) == (
        data["symbol"],
        data["decimals"],
        data["uri"],
    )
    assert asset_id(asset).hex() == data["asset_id"] == keccak256(asset.uri.encode()).hex()
    return asset


def test_vector_files_are_complete() -> None:
    """A truncated or emptied file must not pass vacuously."""
    assert [h["name"] for h in MANIFEST["heads"]] == ["url", "torrent-v1", "torrent-v2"]
    assert {h["inputs"]["source"]["kind"] for h in MANIFEST["heads"]} == {"url", "btih", "btmh"}
    assert len(MANIFEST["content"]["statements"]) == 3
    assert len(QUOTE["quotes"]) == 2
    amounts = sorted(int(v["inputs"]["amount"]) for v in VOUCHER["vouchers"])
    assert amounts == sorted([1, 10**18, 2**128 - 1] * 2)
    assert {v["domain"] for v in VOUCHER["vouchers"]} == {"local", "tron-mainnet-btt"}


# --------------------------------------------------------------------------- manifest heads


@pytest.mark.parametrize("vector", by_name(MANIFEST["heads"]))
def test_head_rebuilds_from_inputs(vector: Any) -> None:
    inputs = vector["inputs"]
    key = NodeKey(bytes.fromhex(inputs["edge_seed"]))
    assert key.node_id.hex() == vector["edge_id"] == MANIFEST["edge"]["edge_id"]
    head = ManifestHead.create(
        key,
        source=source_from(inputs["source"]),
        status=inputs["status"],
        headers=[(n, v) for n, v in inputs["headers"]],
        created_at=inputs["created_at"],
        nonce=bytes.fromhex(inputs["nonce"]),
        chunk_size=inputs["chunk_size"],
        size_hint=int(inputs["size_hint"]),
    )
    assert head.body.hex() == vector["body"]
    assert head.signature.hex() == vector["signature"]
    assert head.content_id.hex() == vector["content_id"]
    assert head.encode().hex() == vector["encoded"]


@pytest.mark.parametrize("vector", by_name(MANIFEST["heads"]))
def test_head_decodes_to_inputs(vector: Any) -> None:
    inputs = vector["inputs"]
    head = ManifestHead.decode(bytes.fromhex(vector["encoded"]))
    assert head.edge_id.hex() == vector["edge_id"]
    assert head.created_at == inputs["created_at"]
    assert head.nonce.hex() == inputs["nonce"]
    assert head.source == source_from(inputs["source"])
    assert head.status == inputs["status"]
    assert [list(h) for h in head.headers] == vector["headers_encoded"]
    assert vector["headers_encoded"] == [[n.lower(), v] for n, v in inputs["headers"]]
    assert head.chunk_size == inputs["chunk_size"]
    assert head.size_hint == int(inputs["size_hint"])
    assert head.content_id.hex() == vector["content_id"]


@pytest.mark.parametrize("vector", by_name(MANIFEST["heads"]))
def test_head_layout_by_hand(vector: Any) -> None:
    """docs/protocol.md section 3: the head's bytes, its content id and its signature."""
    inputs = vector["inputs"]
    src = inputs["source"]
    if src["kind"] == "url":
        source = b"\x01" + text16(src["url"])
    else:
        infohash = bytes.fromhex(src["infohash"])
        assert len(infohash) == {"btih": 20, "btmh": 32}[src["kind"]]
        source = bytes([{"btih": 2, "btmh": 3}[src["kind"]]]) + infohash + text16(src["path"])
    headers = b"".join(text16(n.lower()) + text16(v) for n, v in inputs["headers"])
    body = (
        b"ATM\x01"
        + bytes.fromhex(vector["edge_id"])
        + u64(inputs["created_at"])
        + bytes.fromhex(inputs["nonce"])
        + source
        + u16(inputs["status"])
        + u16(len(inputs["headers"]))
        + headers
        + u32(inputs["chunk_size"])
        + u64(int(inputs["size_hint"]))
    )
    assert body.hex() == vector["body"]
    assert hashlib.sha256(body).hexdigest() == vector["content_id"]
    signature = bytes.fromhex(vector["signature"])
    assert vector["encoded"] == (body + signature).hex()
    nacl.signing.VerifyKey(bytes.fromhex(vector["edge_id"])).verify(body, signature)


# --------------------------------------------------------------------------- chunks and seal


def vector_body() -> bytes:
    content = MANIFEST["content"]
    assert content["body_pattern"] == "body[i] = (i * 31 + 7) % 251 for i in range(600000)"
    body = bytes((i * 31 + 7) % 251 for i in range(content["body_size"]))
    assert hashlib.sha256(body).hexdigest() == content["body_sha256"]
    return body


def content_head() -> ManifestHead:
    content = MANIFEST["content"]
    (vector,) = [h for h in MANIFEST["heads"] if h["name"] == content["head"]]
    head = ManifestHead.decode(bytes.fromhex(vector["encoded"]))
    assert head.content_id.hex() == content["content_id"]
    assert head.chunk_size == content["chunk_size"] == 256 * 1024
    return head


def test_chunk_statements_by_hand() -> None:
    content = MANIFEST["content"]
    body = vector_body()
    cid = bytes.fromhex(content["content_id"])
    edge = nacl.signing.VerifyKey(bytes.fromhex(MANIFEST["edge"]["edge_id"]))
    offset = 0
    for index, st in enumerate(content["statements"]):
        size = min(content["chunk_size"], len(body) - offset)
        chunk = body[offset : offset + size]
        assert (st["index"], st["offset"], st["size"]) == (index, offset, size)
        assert hashlib.sha256(chunk).hexdigest() == st["sha256"]
        stmt_body = b"ATC\x01" + cid + u32(index) + u32(size) + hashlib.sha256(chunk).digest()
        assert stmt_body.hex() == st["body"]
        assert st["encoded"] == st["body"] + st["signature"]
        edge.verify(stmt_body, bytes.fromhex(st["signature"]))
        offset += size
    assert offset == len(body)

    seal = content["seal"]
    assert (seal["total_size"], seal["chunk_count"]) == (600_000, 3)
    digest = hashlib.sha256(
        CHUNK_LIST_TAG + b"".join(bytes.fromhex(st["sha256"]) for st in content["statements"])
    ).digest()
    assert digest.hex() == seal["chunk_list_digest"]
    seal_body = b"ATS\x01" + cid + u64(seal["total_size"]) + u32(seal["chunk_count"]) + digest
    assert seal_body.hex() == seal["body"]
    assert seal["encoded"] == seal["body"] + seal["signature"]
    edge.verify(seal_body, bytes.fromhex(seal["signature"]))


def test_chunk_statements_and_seal_rebuild() -> None:
    content = MANIFEST["content"]
    key = NodeKey(bytes.fromhex(MANIFEST["edge"]["seed"]))
    head = content_head()
    body = vector_body()
    for st in content["statements"]:
        chunk = body[st["offset"] : st["offset"] + st["size"]]
        assert head.statement(key, st["index"], chunk).encode().hex() == st["encoded"]
    hashes = [bytes.fromhex(st["sha256"]) for st in content["statements"]]
    assert head.seal(key, len(body), hashes).encode().hex() == content["seal"]["encoded"]

    # The streaming publisher, fed in pieces that straddle chunk boundaries, agrees.
    publisher = ContentPublisher(key, head)
    produced = []
    for start in range(0, len(body), 99_991):
        produced += publisher.feed(body[start : start + 99_991])
    last, seal = publisher.finish()
    produced += last
    assert [c.statement.encode().hex() for c in produced] == [
        st["encoded"] for st in content["statements"]
    ]
    assert b"".join(c.data for c in produced) == body
    assert seal.encode().hex() == content["seal"]["encoded"]


def test_chunk_statements_and_seal_decode() -> None:
    content = MANIFEST["content"]
    head = content_head()
    body = vector_body()
    verifier = ContentVerifier(head)
    seal_vector = content["seal"]
    seal = verifier.accept_seal(bytes.fromhex(seal_vector["encoded"]))
    assert seal.content_id.hex() == content["content_id"]
    assert (seal.total_size, seal.chunk_count) == (
        seal_vector["total_size"],
        seal_vector["chunk_count"],
    )
    assert seal.chunk_list_digest.hex() == seal_vector["chunk_list_digest"]
    for st in reversed(content["statements"]):  # any order
        chunk = body[st["offset"] : st["offset"] + st["size"]]
        statement = verifier.verify_chunk(bytes.fromhex(st["encoded"]), chunk)
        assert statement.content_id.hex() == content["content_id"]
        assert (statement.index, statement.size, statement.sha256.hex()) == (
            st["index"],
            st["size"],
            st["sha256"],
        )
        assert statement.signature.hex() == st["signature"]
    assert verifier.check_complete() == seal


# --------------------------------------------------------------------------- quotes


def quote_inputs(vector: Any) -> dict[str, Any]:
    inputs = vector["inputs"]
    return {
        "payee": address_from(inputs["payee"]),
        "asset": asset_from(inputs["asset"]),
        "domain": PaymentDomain(inputs["chain_id"], bytes.fromhex(inputs["contract"])),
        "content_id": bytes.fromhex(inputs["content_id"]),
        "price_per_chunk": int(inputs["price_per_chunk"]),
        "price_per_mib": int(inputs["price_per_mib"]),
        "interval": inputs["interval"],
        "valid_from": int(inputs["valid_from"]),
        "valid_until": int(inputs["valid_until"]),
    }


@pytest.mark.parametrize("vector", by_name(QUOTE["quotes"]))
def test_quote_rebuilds_from_inputs(vector: Any) -> None:
    key = NodeKey(bytes.fromhex(vector["inputs"]["edge_seed"]))
    assert key.node_id.hex() == vector["edge_id"]
    quote = Quote.create(key, **quote_inputs(vector))
    assert quote.encode().hex() == vector["encoded"]
    assert quote.signature.hex() == vector["signature"]
    assert vector["encoded"] == vector["body"] + vector["signature"]


@pytest.mark.parametrize("vector", by_name(QUOTE["quotes"]))
def test_quote_decodes_to_inputs(vector: Any) -> None:
    quote = Quote.decode(bytes.fromhex(vector["encoded"]))
    expected = quote_inputs(vector)
    assert quote.edge_id.hex() == vector["edge_id"]
    for name, value in expected.items():
        assert getattr(quote, name) == value, name
    for example in vector["chunk_prices"]:
        assert quote.chunk_price(example["wire_bytes"]) == int(example["price"])


@pytest.mark.parametrize("vector", by_name(QUOTE["quotes"]))
def test_quote_layout_by_hand(vector: Any) -> None:
    inputs = vector["inputs"]
    body = (
        b"ATQ\x01"
        + bytes.fromhex(vector["edge_id"])
        + bytes.fromhex(inputs["payee"]["hex"])
        + bytes([inputs["asset"]["code"]])
        + u64(inputs["chain_id"])
        + bytes.fromhex(inputs["contract"])
        + bytes.fromhex(inputs["content_id"])
        + u128(int(inputs["price_per_chunk"]))
        + u128(int(inputs["price_per_mib"]))
        + u32(inputs["interval"])
        + u64(int(inputs["valid_from"]))
        + u64(int(inputs["valid_until"]))
    )
    assert body.hex() == vector["body"]
    assert len(body) + 64 == 234
    nacl.signing.VerifyKey(bytes.fromhex(vector["edge_id"])).verify(
        body, bytes.fromhex(vector["signature"])
    )
    per_chunk, per_mib = int(inputs["price_per_chunk"]), int(inputs["price_per_mib"])
    for example in vector["chunk_prices"]:
        w = example["wire_bytes"]
        assert int(example["price"]) == per_chunk + -(-w * per_mib // 2**20)


# --------------------------------------------------------------------------- vouchers


def hand_domain_separator(chain_id: int, contract: bytes) -> bytes:
    return keccak256(
        word_bytes32(keccak256(EIP712_DOMAIN_TYPE))
        + word_bytes32(keccak256(DOMAIN_NAME))
        + word_bytes32(keccak256(DOMAIN_VERSION))
        + word_uint(chain_id)
        + word_address(contract)
    )


def hand_struct_hash(cid: bytes, payer: bytes, payee: bytes, asset: bytes, amount: int) -> bytes:
    return keccak256(
        word_bytes32(keccak256(VOUCHER_TYPE))
        + word_bytes32(cid)
        + word_address(payer)
        + word_address(payee)
        + word_bytes32(asset)
        + word_uint(amount)
    )


def hand_recover(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address ``ecrecover`` would return, via libsecp256k1 directly."""
    assert len(signature) == 65
    assert signature[64] in (27, 28)
    public = PublicKey.from_signature_and_message(
        signature[:64] + bytes([signature[64] - 27]), digest, hasher=None
    )
    return keccak256(public.format(compressed=False)[1:])[12:]


@pytest.mark.parametrize("vector", by_name(VOUCHER["vouchers"]))
def test_voucher_digest_by_hand(vector: Any) -> None:
    """The EIP-712 digest from docs/protocol.md 6.1, built word by word, is the recorded one."""
    inputs = vector["inputs"]
    chain_id, contract = inputs["chain_id"], bytes.fromhex(inputs["contract"])
    payer = bytes.fromhex(inputs["payer"]["evm"])
    payee = bytes.fromhex(inputs["payee"]["evm"])
    asset = keccak256(inputs["asset"]["uri"].encode())
    assert asset.hex() == inputs["asset"]["asset_id"]
    assert bytes.fromhex(inputs["payer"]["hex"]) == b"\x41" + payer
    assert bytes.fromhex(inputs["payee"]["hex"]) == b"\x41" + payee

    cid = keccak256(
        word_bytes32(keccak256(CHANNEL_ID_TAG))
        + word_uint(chain_id)
        + word_address(contract)
        + word_address(payer)
        + word_address(payee)
        + word_bytes32(asset)
        + word_bytes32(bytes.fromhex(inputs["channel_salt"]))
    )
    assert cid.hex() == inputs["channel_id"]

    separator = hand_domain_separator(chain_id, contract)
    assert separator.hex() == vector["domain_separator"]
    assert separator.hex() == VOUCHER["domains"][vector["domain"]]["separator"]
    struct_hash = hand_struct_hash(cid, payer, payee, asset, int(inputs["amount"]))
    assert struct_hash.hex() == vector["struct_hash"]
    digest = keccak256(b"\x19\x01" + separator + struct_hash)
    assert digest.hex() == vector["digest"]

    signature = bytes.fromhex(vector["signature"])
    assert 0 < int.from_bytes(signature[32:64], "big") <= SECP256K1_N // 2
    assert hand_recover(digest, signature) == payer


@pytest.mark.parametrize("vector", by_name(VOUCHER["vouchers"]))
def test_voucher_rebuilds_from_inputs(vector: Any) -> None:
    inputs = vector["inputs"]
    key = PayerKey(bytes.fromhex(inputs["payer_secret"]))
    assert key.address == address_from(inputs["payer"])
    payee = address_from(inputs["payee"])
    asset = asset_from(inputs["asset"])
    domain = PaymentDomain(inputs["chain_id"], bytes.fromhex(inputs["contract"]))
    domain_vector = VOUCHER["domains"][vector["domain"]]
    assert (domain.chain_id, domain.contract.hex()) == (
        domain_vector["chain_id"],
        domain_vector["contract"],
    )
    assert domain.chain_id == int(domain_vector["chain_id_hex"], 16)
    assert TronAddress.parse(domain_vector["contract_base58"]).evm == domain.contract
    assert domain.separator.hex() == vector["domain_separator"]
    cid = channel_id(domain, key.address, payee, asset, bytes.fromhex(inputs["channel_salt"]))
    assert cid.hex() == inputs["channel_id"]

    voucher = Voucher.create(
        key, domain=domain, channel_id=cid, payee=payee, asset=asset, amount=int(inputs["amount"])
    )
    assert voucher.struct_hash().hex() == vector["struct_hash"]
    assert voucher.digest().hex() == vector["digest"]
    assert voucher.signature.hex() == vector["signature"]
    assert key.sign_digest(bytes.fromhex(vector["digest"])).hex() == vector["signature"]
    assert voucher.encode().hex() == vector["encoded"]
    assert voucher.to_header() == vector["header"]


@pytest.mark.parametrize("vector", by_name(VOUCHER["vouchers"]))
def test_voucher_decodes_to_inputs(vector: Any) -> None:
    inputs = vector["inputs"]
    voucher = Voucher.decode(bytes.fromhex(vector["encoded"]))
    assert Voucher.from_header(vector["header"]) == voucher
    assert voucher.domain == PaymentDomain(inputs["chain_id"], bytes.fromhex(inputs["contract"]))
    assert voucher.channel_id.hex() == inputs["channel_id"]
    assert voucher.payer == address_from(inputs["payer"])
    assert voucher.payee == address_from(inputs["payee"])
    assert voucher.asset == asset_from(inputs["asset"])
    assert voucher.amount == int(inputs["amount"])
    assert voucher.signature.hex() == vector["signature"]
    assert voucher.digest().hex() == vector["digest"]


@pytest.mark.parametrize("vector", by_name(VOUCHER["vouchers"]))
def test_voucher_layout_by_hand(vector: Any) -> None:
    """docs/protocol.md section 6: 188 bytes, and the header is unpadded base64url of them."""
    inputs = vector["inputs"]
    encoded = (
        b"ATV\x01"
        + u64(inputs["chain_id"])
        + bytes.fromhex(inputs["contract"])
        + bytes.fromhex(inputs["channel_id"])
        + bytes.fromhex(inputs["payer"]["hex"])
        + bytes.fromhex(inputs["payee"]["hex"])
        + bytes([inputs["asset"]["code"]])
        + u128(int(inputs["amount"]))
        + bytes.fromhex(vector["signature"])
    )
    assert len(encoded) == 188
    assert encoded.hex() == vector["encoded"]
    header = base64.urlsafe_b64encode(encoded).rstrip(b"=").decode("ascii")
    assert header == vector["header"]
    assert "=" not in header
    assert base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)) == encoded
