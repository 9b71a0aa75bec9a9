"""Vouchers: EIP-712 digests, recoverable low-s signatures, wire and header forms."""

from __future__ import annotations

import pytest
from Crypto.Hash import keccak
from eth_abi.abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from requester.protocol import (
    BTT,
    BTT_LEGACY,
    BTT_LOCAL,
    LOCAL_CHAIN_ID,
    LOCAL_LEDGER_CONTRACT,
    TRON_MAINNET_CHAIN_ID,
    VOUCHER_HEADER,
    Asset,
    ChannelTerms,
    InvalidSignature,
    MalformedMessage,
    PayerKey,
    PaymentDomain,
    ProtocolError,
    TronAddress,
    Voucher,
    asset_id,
    b64url_encode,
    channel_id,
)
from requester.protocol.codec import U64_MAX, U128_MAX
from requester.protocol.voucher import VOUCHER_MAGIC, VOUCHER_SIZE
from tests.conftest import (
    OTHER_PAYER_SECRET,
    PAYEE_SECRET,
    PAYER_SECRET,
    make_terms,
    make_voucher,
)
from tests.protocol.support import assert_every_flip_refused

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
PAYER = PayerKey(PAYER_SECRET)
PAYEE = PayerKey(PAYEE_SECRET)
OTHER = PayerKey(OTHER_PAYER_SECRET)
TERMS: ChannelTerms = make_terms(PAYER, PAYEE)
VOUCHER = make_voucher(PAYER, TERMS, 12345)
LOCAL = PaymentDomain(LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT)
KEYS = [PAYER, PAYEE, OTHER]


def k256(data: bytes) -> bytes:
    return bytes(keccak.new(data=data, digest_bits=256).digest())


def spec_digest(
    domain: PaymentDomain, cid: bytes, payer: bytes, payee: bytes, asset: Asset, amount: int
) -> bytes:
    """docs/protocol.md section 6.1, written out independently of the implementation."""
    domain_typehash = k256(
        b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    separator = k256(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [domain_typehash, k256(b"Atlas"), k256(b"1"), domain.chain_id, domain.contract],
        )
    )
    voucher_typehash = k256(
        b"Voucher(bytes32 channelId,address payer,address payee,bytes32 asset,uint256 amount)"
    )
    struct_hash = k256(
        abi_encode(
            ["bytes32", "bytes32", "address", "address", "bytes32", "uint256"],
            [voucher_typehash, cid, payer, payee, k256(asset.uri.encode()), amount],
        )
    )
    return k256(b"\x19\x01" + separator + struct_hash)


def with_signature(voucher: Voucher, signature: bytes) -> bytes:
    return voucher.encode()[:-65] + signature


@st.composite
def vouchers(draw: st.DrawFn) -> Voucher:
    return Voucher.create(
        draw(st.sampled_from(KEYS)),
        domain=PaymentDomain(
            draw(st.integers(0, U64_MAX)), draw(st.binary(min_size=20, max_size=20))
        ),
        channel_id=draw(st.binary(min_size=32, max_size=32)),
        payee=TronAddress(b"\x41" + draw(st.binary(min_size=20, max_size=20))),
        asset=draw(st.sampled_from([BTT, BTT_LEGACY, BTT_LOCAL])),
        amount=draw(st.integers(0, U128_MAX)),
    )


# Round trips -----------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(vouchers())
def test_round_trip(voucher: Voucher) -> None:
    data = voucher.encode()
    assert len(data) == VOUCHER_SIZE == 188
    assert data.startswith(VOUCHER_MAGIC)
    decoded = Voucher.decode(data)
    assert decoded == voucher
    assert decoded.encode() == data
    header = voucher.to_header()
    assert "=" not in header
    assert Voucher.from_header(header) == voucher
    assert Voucher.from_header(f" {header} ") == voucher
    assert voucher.digest() == spec_digest(
        voucher.domain,
        voucher.channel_id,
        voucher.payer.evm,
        voucher.payee.evm,
        voucher.asset,
        voucher.amount,
    )


def test_layout() -> None:
    data = VOUCHER.encode()
    assert data[:4] == b"ATV\x01"
    assert data[4:12] == LOCAL_CHAIN_ID.to_bytes(8, "big")
    assert data[12:32] == LOCAL_LEDGER_CONTRACT
    assert data[32:64] == TERMS.channel_id
    assert data[64:85] == PAYER.address.raw
    assert data[85:106] == PAYEE.address.raw
    assert data[106] == BTT_LOCAL.code
    assert int.from_bytes(data[107:123], "big") == 12345
    assert data[187] in (27, 28)
    assert VOUCHER_HEADER == "Atlas-Voucher"


# Digests ---------------------------------------------------------------------------


def test_digest_is_deterministic_for_fixed_keys() -> None:
    again = make_voucher(PayerKey(PAYER_SECRET), make_terms(PayerKey(PAYER_SECRET), PAYEE), 12345)
    assert again.digest() == VOUCHER.digest()
    assert again.signature == VOUCHER.signature  # RFC 6979 nonces: same key, same bytes
    assert again.encode() == VOUCHER.encode()
    assert VOUCHER.digest() == spec_digest(
        LOCAL, TERMS.channel_id, PAYER.address.evm, PAYEE.address.evm, BTT_LOCAL, 12345
    )


def test_digest_binds_every_field() -> None:
    mainnet = PaymentDomain(TRON_MAINNET_CHAIN_ID, LOCAL_LEDGER_CONTRACT)
    other_contract = PaymentDomain(LOCAL_CHAIN_ID, bytes(20))
    base = Voucher(LOCAL, TERMS.channel_id, PAYER.address, PAYEE.address, BTT_LOCAL, 5, b"")
    variants = [
        Voucher(mainnet, TERMS.channel_id, PAYER.address, PAYEE.address, BTT_LOCAL, 5, b""),
        Voucher(other_contract, TERMS.channel_id, PAYER.address, PAYEE.address, BTT_LOCAL, 5, b""),
        Voucher(LOCAL, bytes(32), PAYER.address, PAYEE.address, BTT_LOCAL, 5, b""),
        Voucher(LOCAL, TERMS.channel_id, OTHER.address, PAYEE.address, BTT_LOCAL, 5, b""),
        Voucher(LOCAL, TERMS.channel_id, PAYER.address, OTHER.address, BTT_LOCAL, 5, b""),
        Voucher(LOCAL, TERMS.channel_id, PAYER.address, PAYEE.address, BTT, 5, b""),
        Voucher(LOCAL, TERMS.channel_id, PAYER.address, PAYEE.address, BTT_LOCAL, 6, b""),
    ]
    digests = {base.digest()} | {v.digest() for v in variants}
    assert len(digests) == len(variants) + 1


def test_asset_id_and_channel_id_follow_the_spec() -> None:
    for asset in (BTT, BTT_LEGACY, BTT_LOCAL):
        assert asset_id(asset) == k256(asset.uri.encode())
    salt = b"\x05" * 32
    expected = k256(
        abi_encode(
            ["bytes32", "uint256", "address", "address", "address", "bytes32", "bytes32"],
            [
                k256(b"atlas.channel-id.v1"),
                LOCAL_CHAIN_ID,
                LOCAL_LEDGER_CONTRACT,
                PAYER.address.evm,
                PAYEE.address.evm,
                k256(b"atlas:local:BTT"),
                salt,
            ],
        )
    )
    assert channel_id(LOCAL, PAYER.address, PAYEE.address, BTT_LOCAL, salt) == expected
    assert channel_id(LOCAL, PAYER.address, PAYEE.address, BTT_LOCAL, bytes(32)) != expected
    with pytest.raises(MalformedMessage, match="channel salt is 32 bytes"):
        channel_id(LOCAL, PAYER.address, PAYEE.address, BTT_LOCAL, bytes(31))


def test_payment_domain() -> None:
    assert k256(b"atlas.local-ledger.v1")[-20:] == LOCAL_LEDGER_CONTRACT
    assert LOCAL.separator != PaymentDomain(TRON_MAINNET_CHAIN_ID, LOCAL_LEDGER_CONTRACT).separator
    assert LOCAL.typed_digest(bytes(32)) == k256(b"\x19\x01" + LOCAL.separator + bytes(32))
    with pytest.raises(MalformedMessage, match="20 bytes"):
        PaymentDomain(LOCAL_CHAIN_ID, bytes(21))
    with pytest.raises(MalformedMessage, match="out of range"):
        PaymentDomain(1 << 64, LOCAL_LEDGER_CONTRACT)
    with pytest.raises(MalformedMessage, match="out of range"):
        PaymentDomain(-1, LOCAL_LEDGER_CONTRACT)


# Signatures ------------------------------------------------------------------------


def test_high_s_twin_is_refused() -> None:
    sig = VOUCHER.signature
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    with pytest.raises(
        InvalidSignature, match="voucher: signature s value is zero or not in the lower half"
    ):
        Voucher.decode(with_signature(VOUCHER, twin))


@pytest.mark.parametrize("v", [0, 1, 26, 29, 37, 38, 255])
def test_v_not_27_or_28_is_refused(v: int) -> None:
    with pytest.raises(InvalidSignature, match="v must be 27 or 28"):
        Voucher.decode(with_signature(VOUCHER, VOUCHER.signature[:64] + bytes([v])))


def test_other_v_recovers_another_key() -> None:
    sig = VOUCHER.signature
    with pytest.raises(InvalidSignature):
        Voucher.decode(with_signature(VOUCHER, sig[:64] + bytes([55 - sig[64]])))


def test_voucher_signed_by_another_key_is_refused() -> None:
    forged = with_signature(VOUCHER, OTHER.sign_digest(VOUCHER.digest()))
    with pytest.raises(
        InvalidSignature, match=f"signed by {OTHER.address}, not by its payer {PAYER.address}"
    ):
        Voucher.decode(forged)


def test_signature_over_another_amount_is_refused() -> None:
    other_amount = make_voucher(PAYER, TERMS, 12346)
    with pytest.raises(InvalidSignature):
        Voucher.decode(with_signature(VOUCHER, other_amount.signature))


# Limits and fuzz -------------------------------------------------------------------


def test_field_limits() -> None:
    with pytest.raises(MalformedMessage, match="a channel id is 32 bytes"):
        Voucher(LOCAL, bytes(31), PAYER.address, PAYEE.address, BTT_LOCAL, 1, b"")
    with pytest.raises(MalformedMessage, match="out of range"):
        Voucher(LOCAL, bytes(32), PAYER.address, PAYEE.address, BTT_LOCAL, U128_MAX + 1, b"")
    with pytest.raises(MalformedMessage, match="out of range"):
        make_voucher(PAYER, TERMS, -1)
    assert Voucher.decode(make_voucher(PAYER, TERMS, U128_MAX).encode()).amount == U128_MAX


def test_decode_refuses_wrong_size_magic_and_fields() -> None:
    data = VOUCHER.encode()
    with pytest.raises(MalformedMessage, match="voucher must be 188 bytes, got 189"):
        Voucher.decode(data + b"\x00")
    with pytest.raises(MalformedMessage, match="voucher must be 188 bytes, got 187"):
        Voucher.decode(data[:-1])
    with pytest.raises(MalformedMessage, match="bad magic or version"):
        Voucher.decode(b"ATV\x02" + data[4:])
    with pytest.raises(MalformedMessage, match="unknown asset code 0"):
        Voucher.decode(data[:106] + b"\x00" + data[107:])
    with pytest.raises(MalformedMessage, match="TRON address"):
        Voucher.decode(data[:85] + b"\x00" + data[86:])


def test_header_refusals() -> None:
    header = VOUCHER.to_header()
    with pytest.raises(MalformedMessage, match="Atlas-Voucher: not base64url"):
        Voucher.from_header(header.replace("-", "+").replace("_", "/") + "+")
    with pytest.raises(
        MalformedMessage, match="Atlas-Voucher: header value longer than 188 bytes allow"
    ):
        Voucher.from_header(header + "AAAA")
    with pytest.raises(MalformedMessage, match="voucher must be 188 bytes"):
        Voucher.from_header(b64url_encode(VOUCHER.encode()[:-3]))
    with pytest.raises(MalformedMessage):
        Voucher.from_header("")


def test_every_byte_is_protected() -> None:
    assert_every_flip_refused(VOUCHER.encode(), Voucher.decode)


def test_every_header_character_is_protected() -> None:
    """A changed character either is refused or (in the last character's spare bits) decodes
    to the very same voucher: it never yields another valid one."""
    header = VOUCHER.to_header()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for index, char in enumerate(header):
        for replacement in {alphabet[(alphabet.index(char) + step) % 64] for step in (1, 2, 32)}:
            mutated = header[:index] + replacement + header[index + 1 :]
            try:
                decoded = Voucher.from_header(mutated)
            except ProtocolError:
                continue
            assert index == len(header) - 1
            assert decoded == VOUCHER


@settings(max_examples=20, deadline=None)
@given(vouchers(), st.data())
def test_random_flips_in_random_vouchers(voucher: Voucher, data: st.DataObject) -> None:
    encoded = voucher.encode()
    index = data.draw(st.integers(0, len(encoded) - 1))
    mask = data.draw(st.integers(1, 255))
    with pytest.raises(ProtocolError):
        Voucher.decode(encoded[:index] + bytes([encoded[index] ^ mask]) + encoded[index + 1 :])


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.binary(min_size=VOUCHER_SIZE, max_size=VOUCHER_SIZE),
        st.binary(min_size=VOUCHER_SIZE - 4, max_size=VOUCHER_SIZE - 4).map(
            lambda b: VOUCHER_MAGIC + b
        ),
        st.binary(min_size=65, max_size=65).map(lambda sig: VOUCHER.encode()[:-65] + sig),
    )
)
def test_decode_only_raises_protocol_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        Voucher.decode(data)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300),
        st.binary(max_size=200).map(b64url_encode),
        st.binary(min_size=VOUCHER_SIZE, max_size=VOUCHER_SIZE).map(b64url_encode),
    )
)
def test_from_header_only_raises_protocol_errors(text: str) -> None:
    with pytest.raises(ProtocolError):
        Voucher.from_header(text)
