"""Keys and addresses: Ed25519 node ids, TRON addresses, recoverable low-s signatures."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from requester.protocol import (
    InvalidSignature,
    MalformedMessage,
    NodeId,
    NodeKey,
    PayerKey,
    TronAddress,
    recover_signer,
)
from requester.protocol.identity import _SECP256K1_HALF_N, VERIFIED_KEPT, VERIFIED_MESSAGE
from requester.protocol.payment_domain import abi_words, keccak256
from tests.conftest import EDGE_SEED, OTHER_EDGE_SEED, OTHER_PAYER_SECRET, PAYER_SECRET

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
EDGE = NodeKey(EDGE_SEED)
PAYER = PayerKey(PAYER_SECRET)
DIGEST = hashlib.sha256(b"atlas test digest").digest()

# RFC 8032 section 7.1, test 1: an independent check that NodeKey is plain Ed25519.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC8032_SIG = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_hypothesis_runs_without_a_deadline() -> None:
    """tests/conftest.py loads a profile with no per-example deadline: a deadline is a timing
    assert, and examples that sign, recover or import tronpy pass it or not with the load."""
    current = settings.default
    assert current is not None and current.deadline is None


def test_half_n_is_half_the_curve_order() -> None:
    assert _SECP256K1_HALF_N == SECP256K1_N // 2


# Node ids and keys -----------------------------------------------------------------


def test_node_key_is_rfc8032_ed25519() -> None:
    key = NodeKey(RFC8032_SEED)
    assert key.node_id.hex() == RFC8032_PUBLIC
    assert key.sign(b"").hex() == RFC8032_SIG
    key.node_id.verify(b"", bytes.fromhex(RFC8032_SIG), "test")
    assert key.seed == RFC8032_SEED


def test_node_key_round_trips_and_is_deterministic() -> None:
    key = NodeKey(EDGE_SEED)
    assert NodeKey(key.seed).node_id == key.node_id
    assert key.sign(b"m") == NodeKey(EDGE_SEED).sign(b"m")
    assert str(key.node_id) == key.node_id.hex()
    generated = NodeKey.generate()
    assert len(generated.seed) == 32
    assert generated.node_id != key.node_id


@pytest.mark.parametrize("size", [0, 31, 33])
def test_node_key_seed_size(size: int) -> None:
    with pytest.raises(MalformedMessage, match="32 bytes"):
        NodeKey(bytes(size))


def test_node_id_verify() -> None:
    sig = EDGE.sign(b"message")
    EDGE.node_id.verify(b"message", sig, "thing")
    with pytest.raises(InvalidSignature, match="thing: signature does not verify for node"):
        EDGE.node_id.verify(b"messagE", sig, "thing")
    with pytest.raises(InvalidSignature):
        NodeKey(OTHER_EDGE_SEED).node_id.verify(b"message", sig, "thing")
    with pytest.raises(MalformedMessage, match="thing: signature must be 64 bytes"):
        EDGE.node_id.verify(b"message", sig[:63], "thing")


def test_a_remembered_good_signature_vouches_for_nothing_else() -> None:
    """NodeId.verify remembers good signatures of short messages (a chunk statement comes
    again with every request for a page asset): the same key, message and signature pass
    again, while another message, another key or a flipped bit of the signature are still
    checked and refused, and a refused one is never remembered."""
    message = b"statement " * 7
    sig = EDGE.sign(message)
    for _ in range(2):
        EDGE.node_id.verify(message, sig, "statement")
    forged = bytes([sig[0] ^ 1]) + sig[1:]
    for _ in range(2):
        with pytest.raises(InvalidSignature):
            EDGE.node_id.verify(message, forged, "statement")
        with pytest.raises(InvalidSignature):
            EDGE.node_id.verify(message + b"!", sig, "statement")
        with pytest.raises(InvalidSignature):
            NodeKey(OTHER_EDGE_SEED).node_id.verify(message, sig, "statement")
    for n in range(VERIFIED_KEPT + 5):  # past the bound: forgotten, checked again, still good
        other = f"chunk {n}".encode()
        EDGE.node_id.verify(other, EDGE.sign(other), "statement")
    EDGE.node_id.verify(message, sig, "statement")
    long = b"h" * (VERIFIED_MESSAGE + 1)  # a head: checked every time, good or not
    EDGE.node_id.verify(long, EDGE.sign(long), "head")
    with pytest.raises(InvalidSignature):
        EDGE.node_id.verify(long + b"!", EDGE.sign(long), "head")


def test_node_id_size_and_hex() -> None:
    node = EDGE.node_id
    assert NodeId.from_hex(node.hex()) == node
    assert NodeId.from_hex(node.hex().upper()) == node
    with pytest.raises(MalformedMessage, match="node id must be 32 bytes, got 31"):
        NodeId(bytes(31))
    with pytest.raises(MalformedMessage, match="node id must be 32 bytes"):
        NodeId.from_hex("00" * 33)
    with pytest.raises(MalformedMessage, match="node id is not hex"):
        NodeId.from_hex("zz" * 32)


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_node_id_from_hex_only_raises_malformed(text: str) -> None:
    try:
        node = NodeId.from_hex(text)
    except MalformedMessage:
        return
    assert len(node.raw) == 32


@settings(max_examples=100)
@given(st.binary(min_size=32, max_size=32))
def test_node_id_hex_round_trip(raw: bytes) -> None:
    assert NodeId.from_hex(NodeId(raw).hex()).raw == raw


# TRON addresses --------------------------------------------------------------------


def test_payer_address_is_keccak_of_public_key() -> None:
    from coincurve import PrivateKey as CoincurvePrivateKey

    public = CoincurvePrivateKey(PAYER_SECRET).public_key.format(compressed=False)[1:]
    assert PAYER.address.raw == b"\x41" + keccak256(public)[-20:]
    assert PAYER.address.evm == PAYER.address.raw[1:]
    assert PAYER.secret == PAYER_SECRET


def test_tron_address_text_forms() -> None:
    address = PAYER.address
    text = address.base58()
    assert text.startswith("T")
    assert len(text) == 34
    assert str(address) == text
    assert TronAddress.parse(text) == address
    assert TronAddress.parse(address.raw.hex()) == address
    assert TronAddress.parse("0x" + address.evm.hex()) == address


@pytest.mark.parametrize(
    "text",
    [
        "",
        "T",
        "TCLBgkbfVkJroVBJVqBEsxtPNQEQMTQCLR",  # checksum broken (last char changed)
        "XCLBgkbfVkJroVBJVqBEsxtPNQEQMTQCLQ",
        "42" + "00" * 20,  # not the 0x41 prefix
        "41" + "zz" * 20,
        "41" + "00" * 21,
        "x" * 65,
    ],
)
def test_tron_address_parse_refuses(text: str) -> None:
    with pytest.raises(MalformedMessage, match="TRON address"):
        TronAddress.parse(text)


def test_tron_address_parse_refuses_non_text() -> None:
    with pytest.raises(MalformedMessage, match="not a TRON address"):
        TronAddress.parse(PAYER.address.raw)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [bytes(21), b"\x41" + bytes(19), b"\x41" + bytes(21)])
def test_tron_address_raw_form(raw: bytes) -> None:
    with pytest.raises(MalformedMessage, match="21 bytes starting with 0x41"):
        TronAddress(raw)


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=70), st.text("0123456789abcdefABCDEF", min_size=42, max_size=42)))
def test_tron_address_parse_only_raises_malformed(text: str) -> None:
    try:
        address = TronAddress.parse(text)
    except MalformedMessage:
        return
    assert TronAddress.parse(address.base58()) == address


@settings(max_examples=100)
@given(st.binary(min_size=20, max_size=20))
def test_tron_address_round_trip(evm: bytes) -> None:
    address = TronAddress(b"\x41" + evm)
    assert TronAddress.parse(address.base58()) == address
    assert TronAddress.parse(address.raw.hex()) == address


# secp256k1 signatures --------------------------------------------------------------


def _high_s(signature: bytes) -> bytes:
    s = int.from_bytes(signature[32:64], "big")
    flipped_v = 55 - signature[64]  # 27 <-> 28
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([flipped_v])


def test_sign_digest_is_low_s_recoverable_and_deterministic() -> None:
    sig = PAYER.sign_digest(DIGEST)
    assert len(sig) == 65
    assert sig[64] in (27, 28)
    assert 0 < int.from_bytes(sig[32:64], "big") <= _SECP256K1_HALF_N
    assert sig == PayerKey(PAYER_SECRET).sign_digest(DIGEST)
    assert recover_signer(DIGEST, sig, "test") == PAYER.address


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_every_signature_is_low_s_and_recovers(digest: bytes) -> None:
    key = PayerKey.generate()
    sig = key.sign_digest(digest)
    assert int.from_bytes(sig[32:64], "big") <= _SECP256K1_HALF_N
    assert recover_signer(digest, sig, "test") == key.address


def test_high_s_twin_is_refused() -> None:
    """(r, n - s, v ^ 1) is the same signature mathematically; only one form is accepted."""
    sig = PAYER.sign_digest(DIGEST)
    with pytest.raises(InvalidSignature, match="lower half"):
        recover_signer(DIGEST, _high_s(sig), "test")


@pytest.mark.parametrize("v", [0, 1, 26, 29, 35, 255])
def test_v_must_be_27_or_28(v: int) -> None:
    sig = PAYER.sign_digest(DIGEST)
    with pytest.raises(InvalidSignature, match="v must be 27 or 28"):
        recover_signer(DIGEST, sig[:64] + bytes([v]), "test")


def test_zero_s_and_bad_r_and_wrong_length() -> None:
    sig = PAYER.sign_digest(DIGEST)
    with pytest.raises(InvalidSignature, match="zero"):
        recover_signer(DIGEST, sig[:32] + bytes(32) + sig[64:], "test")
    with pytest.raises(InvalidSignature):
        recover_signer(DIGEST, bytes(32) + sig[32:], "test")
    with pytest.raises(InvalidSignature):
        recover_signer(DIGEST, b"\xff" * 32 + sig[32:], "test")
    with pytest.raises(MalformedMessage, match="signature must be 65 bytes"):
        recover_signer(DIGEST, sig[:64], "test")


def test_other_digest_or_key_recovers_another_address() -> None:
    sig = PAYER.sign_digest(DIGEST)
    other_digest = hashlib.sha256(b"other").digest()
    assert recover_signer(other_digest, sig, "test") != PAYER.address
    assert PayerKey(OTHER_PAYER_SECRET).address != PAYER.address


@settings(max_examples=300)
@given(st.binary(max_size=70), st.binary(min_size=32, max_size=32))
def test_recover_signer_only_raises_protocol_errors(signature: bytes, digest: bytes) -> None:
    try:
        address = recover_signer(digest, signature, "fuzz")
    except (MalformedMessage, InvalidSignature):
        return
    assert len(address.raw) == 21


@pytest.mark.parametrize("secret", [bytes(32), (SECP256K1_N).to_bytes(32, "big"), bytes(31)])
def test_payer_key_refuses_bad_secrets(secret: bytes) -> None:
    with pytest.raises(MalformedMessage, match="not a secp256k1 private key"):
        PayerKey(secret)


# The same keys through tronpy ------------------------------------------------------------
# identity.py uses coincurve and base58 directly (tronpy's import is 0.3 s); tronpy's own
# key code must agree with it on every address and signature. The first example imports
# tronpy (0.3-0.4 s, more on a loaded machine): no deadline, whatever the profile says.


@settings(max_examples=50, deadline=None)
@given(st.integers(1, SECP256K1_N - 1), st.binary(min_size=32, max_size=32))
def test_keys_agree_with_tronpy(secret: int, digest: bytes) -> None:
    from tronpy import keys as tron_keys

    ours = PayerKey(secret.to_bytes(32, "big"))
    theirs = tron_keys.PrivateKey(secret.to_bytes(32, "big"))
    assert ours.address.raw == bytes.fromhex(theirs.public_key.to_hex_address())
    assert ours.address.base58() == theirs.public_key.to_base58check_address()
    assert TronAddress.parse(theirs.public_key.to_base58check_address()) == ours.address
    signature = ours.sign_digest(digest)
    tron_signature = theirs.sign_msg_hash(digest).to_bytes()
    assert signature == tron_signature[:64] + bytes([tron_signature[64] + 27])
    assert recover_signer(digest, signature, "test") == ours.address


@settings(max_examples=200, deadline=None)  # the first example imports eth_abi
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("uint256"), st.integers(0, 2**256 - 1)),
            st.tuples(st.just("bytes32"), st.binary(min_size=32, max_size=32)),
            st.tuples(st.just("address"), st.binary(min_size=20, max_size=20)),
        ),
        max_size=8,
    )
)
def test_abi_words_is_eth_abi_for_static_types(items: list[tuple[str, int | bytes]]) -> None:
    from eth_abi.abi import encode as abi_encode

    types = [t for t, _ in items]
    values = [v for _, v in items]
    assert abi_words(*values) == abi_encode(types, values)


@pytest.mark.parametrize("value", [-1, 2**256, b"\x01" * 21, b""])
def test_abi_words_refuses_what_it_cannot_encode(value: int | bytes) -> None:
    with pytest.raises(MalformedMessage):
        abi_words(value)
