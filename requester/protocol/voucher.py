"""Cumulative payment vouchers, signed so a TRON contract can check them.

A voucher says "the payer owes the payee ``amount`` in total on this channel".
Amounts only grow; the payee redeems the highest one. The payer signs the
EIP-712 (TIP-712) digest of the voucher with its TRON secp256k1 key; a
contract recomputes the digest from ABI-encoded fields and checks the signer
with ``ecrecover``. On HTTP a voucher travels base64url-encoded in the
``Atlas-Voucher`` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from requester.protocol.assets import Asset, asset_by_code
from requester.protocol.codec import (
    MAGIC_PREFIX,
    U128_MAX,
    Reader,
    Writer,
    b64url_decode,
    b64url_encode,
)
from requester.protocol.errors import InvalidSignature, MalformedMessage
from requester.protocol.identity import (
    SECP256K1_SIG_SIZE,
    TRON_ADDRESS_SIZE,
    PayerKey,
    TronAddress,
    recover_signer,
)
from requester.protocol.payment_domain import PaymentDomain, abi_words, keccak256

VOUCHER_MAGIC = MAGIC_PREFIX + b"V\x01"
VOUCHER_SIZE = 4 + 8 + 20 + 32 + 21 + 21 + 1 + 16 + SECP256K1_SIG_SIZE
VOUCHER_HEADER = "Atlas-Voucher"
VOUCHER_TYPEHASH = keccak256(
    b"Voucher(bytes32 channelId,address payer,address payee,bytes32 asset,uint256 amount)"
)
CHANNEL_ID_TAG = keccak256(b"atlas.channel-id.v1")
_ADDRESS_PAD = bytes(12)


@lru_cache(maxsize=16)  # a handful of assets exist; hashed once each
def asset_id(asset: Asset) -> bytes:
    """The ``bytes32 asset`` field: keccak256 of the asset's URI."""
    return keccak256(asset.uri.encode())


def channel_id(
    domain: PaymentDomain, payer: TronAddress, payee: TronAddress, asset: Asset, salt: bytes
) -> bytes:
    """The id a ledger gives a channel: a hash of who, what, where and a 32-byte salt."""
    if len(salt) != 32:
        raise MalformedMessage("channel salt is 32 bytes")
    return keccak256(
        abi_words(
            CHANNEL_ID_TAG,
            domain.chain_id,
            domain.contract,
            payer.evm,
            payee.evm,
            asset_id(asset),
            salt,
        )
    )


@dataclass(frozen=True, slots=True)
class Voucher:
    """A signed cumulative voucher. Instances always carry a signature by ``payer``."""

    domain: PaymentDomain
    channel_id: bytes
    payer: TronAddress
    payee: TronAddress
    asset: Asset
    amount: int
    signature: bytes

    def __post_init__(self) -> None:
        if len(self.channel_id) != 32:
            raise MalformedMessage("a channel id is 32 bytes")
        if not 0 <= self.amount <= U128_MAX:
            raise MalformedMessage(f"voucher amount {self.amount} out of range")

    @classmethod
    def create(
        cls,
        key: PayerKey,
        *,
        domain: PaymentDomain,
        channel_id: bytes,
        payee: TronAddress,
        asset: Asset,
        amount: int,
    ) -> Voucher:
        unsigned = cls(domain, channel_id, key.address, payee, asset, amount, b"")
        return cls(
            domain,
            channel_id,
            key.address,
            payee,
            asset,
            amount,
            key.sign_digest(unsigned.digest()),
        )

    @classmethod
    def decode(cls, data: bytes) -> Voucher:
        """Parse a voucher and check its signature recovers to its payer."""
        if len(data) != VOUCHER_SIZE:
            raise MalformedMessage(f"voucher must be {VOUCHER_SIZE} bytes, got {len(data)}")
        r = Reader(data, VOUCHER_MAGIC, "voucher")
        domain = PaymentDomain.of(r.u64(), r.fixed(20))
        channel = r.fixed(32)
        payer = TronAddress(r.fixed(TRON_ADDRESS_SIZE))
        payee = TronAddress(r.fixed(TRON_ADDRESS_SIZE))
        asset = asset_by_code(r.u8())
        amount = r.u128()
        signature = r.fixed(SECP256K1_SIG_SIZE)
        r.end()
        voucher = cls(domain, channel, payer, payee, asset, amount, signature)
        signer = recover_signer(voucher.digest(), signature, "voucher")
        if signer != payer:
            raise InvalidSignature(f"voucher is signed by {signer}, not by its payer {payer}")
        return voucher

    @classmethod
    def from_header(cls, value: str) -> Voucher:
        return cls.decode(b64url_decode(value, VOUCHER_SIZE, VOUCHER_HEADER))

    def struct_hash(self) -> bytes:
        # abi.encode of static fields is one 32-byte word each (addresses left-padded,
        # uint256 big-endian); built by hand because eth_abi costs more than the keccak
        # and every voucher an edge accepts is hashed here (tests check it against eth_abi).
        return keccak256(
            b"".join(
                (
                    VOUCHER_TYPEHASH,
                    self.channel_id,
                    _ADDRESS_PAD + self.payer.evm,
                    _ADDRESS_PAD + self.payee.evm,
                    asset_id(self.asset),
                    self.amount.to_bytes(32, "big"),
                )
            )
        )

    def digest(self) -> bytes:
        """The 32 bytes the payer signs and ``ecrecover`` checks."""
        return self.domain.typed_digest(self.struct_hash())

    def encode(self) -> bytes:
        w = Writer(VOUCHER_MAGIC).u64(self.domain.chain_id).fixed(self.domain.contract, 20)
        w.fixed(self.channel_id, 32).fixed(self.payer.raw, TRON_ADDRESS_SIZE)
        w.fixed(self.payee.raw, TRON_ADDRESS_SIZE).u8(self.asset.code).u128(self.amount)
        return w.fixed(self.signature, SECP256K1_SIG_SIZE).getvalue()

    def to_header(self) -> str:
        return b64url_encode(self.encode())
