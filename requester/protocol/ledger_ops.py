"""Signed calls to a channel ledger: open, top up, reclaim, redeem.

Each call that moves money is signed by the account it spends from, over an
EIP-712 digest in the ledger's :class:`PaymentDomain`, and carries that
account's next nonce, so the embedded ledger checks calls the way the TRON
contract will check transactions. Redeem needs no extra signature: the payer's
voucher authorises it, and its cumulative amount makes a replay move nothing.

On HTTP the calls travel as JSON objects (see ``docs/ledger.md``): amounts and
nonces as decimal strings, addresses in base58, byte strings in hex.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from requester.protocol.assets import Asset, AssetCode, asset_by_code
from requester.protocol.codec import U64_MAX, U128_MAX
from requester.protocol.errors import InvalidSignature, MalformedMessage
from requester.protocol.identity import PayerKey, TronAddress, recover_signer
from requester.protocol.payment_domain import PaymentDomain, abi_words, keccak256
from requester.protocol.voucher import asset_id, channel_id

MAX_JSON_TEXT = 200


def uint64(value: int) -> int:
    """``value`` as an ABI ``uint64`` (:func:`abi_words` encodes it as the same word)."""
    if not 0 <= value <= U64_MAX:
        raise MalformedMessage(f"uint64 out of range: {value}")
    return value


@dataclass(frozen=True, slots=True)
class OpenChannel:
    """Move ``deposit`` from the payer's balance into a new channel to ``payee``."""

    TYPE: ClassVar[str] = "open"
    TYPEHASH: ClassVar[bytes] = keccak256(
        b"OpenChannel(address payer,address payee,bytes32 asset,uint256 deposit,"
        b"uint64 expiresAt,bytes32 salt,uint64 nonce)"
    )
    payer: TronAddress
    payee: TronAddress
    asset: Asset
    deposit: int
    expires_at: int
    salt: bytes
    nonce: int

    @property
    def account(self) -> TronAddress:
        return self.payer

    def struct_hash(self) -> bytes:
        return keccak256(
            abi_words(self.TYPEHASH, self.payer.evm, self.payee.evm, asset_id(self.asset),
                      self.deposit, uint64(self.expires_at), self.salt, uint64(self.nonce))
        )  # fmt: skip

    def channel_id(self, domain: PaymentDomain) -> bytes:
        return channel_id(domain, self.payer, self.payee, self.asset, self.salt)


@dataclass(frozen=True, slots=True)
class TopUpChannel:
    """Add ``amount`` to a channel's deposit and move its expiry to ``expires_at``."""

    TYPE: ClassVar[str] = "topup"
    TYPEHASH: ClassVar[bytes] = keccak256(
        b"TopUpChannel(address payer,bytes32 channelId,uint256 amount,uint64 expiresAt,"
        b"uint64 nonce)"
    )
    payer: TronAddress
    channel_id: bytes
    amount: int
    expires_at: int
    nonce: int

    @property
    def account(self) -> TronAddress:
        return self.payer

    def struct_hash(self) -> bytes:
        return keccak256(
            abi_words(self.TYPEHASH, self.payer.evm, self.channel_id, self.amount,
                      uint64(self.expires_at), uint64(self.nonce))
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReclaimChannel:
    """After expiry, return what the payee did not redeem to the payer."""

    TYPE: ClassVar[str] = "reclaim"
    TYPEHASH: ClassVar[bytes] = keccak256(
        b"ReclaimChannel(address payer,bytes32 channelId,uint64 nonce)"
    )
    payer: TronAddress
    channel_id: bytes
    nonce: int

    @property
    def account(self) -> TronAddress:
        return self.payer

    def struct_hash(self) -> bytes:
        return keccak256(
            abi_words(self.TYPEHASH, self.payer.evm, self.channel_id, uint64(self.nonce))
        )


LedgerOp = OpenChannel | TopUpChannel | ReclaimChannel
_OPS: dict[str, type[OpenChannel] | type[TopUpChannel] | type[ReclaimChannel]] = {
    cls.TYPE: cls for cls in (OpenChannel, TopUpChannel, ReclaimChannel)
}


@dataclass(frozen=True, slots=True)
class SignedOp:
    op: LedgerOp
    signature: bytes

    def digest(self, domain: PaymentDomain) -> bytes:
        return domain.typed_digest(self.op.struct_hash())

    def op_hash(self, domain: PaymentDomain) -> bytes:
        """Identifies this exact call: a retry of the same call has the same hash."""
        return keccak256(self.digest(domain) + self.signature)

    def verify(self, domain: PaymentDomain) -> None:
        """Raise unless the call is signed by the account it spends from."""
        signer = recover_signer(self.digest(domain), self.signature, f"{self.op.TYPE} call")
        if signer != self.op.account:
            raise InvalidSignature(
                f"{self.op.TYPE} call is signed by {signer}, not by {self.op.account}"
            )

    def to_json(self) -> dict[str, str]:
        out: dict[str, str] = {"type": self.op.TYPE, "signature": self.signature.hex()}
        for f in fields(self.op):
            out[f.name] = _field_to_json(getattr(self.op, f.name))
        return out

    @classmethod
    def from_json(cls, data: Any) -> SignedOp:
        """Parse a call from untrusted JSON; refuses unknown, missing or malformed fields."""
        if not isinstance(data, dict):
            raise MalformedMessage("a ledger call is a JSON object")
        op_cls = _OPS.get(str(data.get("type")))
        if op_cls is None:
            raise MalformedMessage(f"unknown call type {str(data.get('type'))[:40]!r}")
        names = {f.name for f in fields(op_cls)}
        extra = set(data) - names - {"type", "signature"}
        if extra:
            raise MalformedMessage(f"unknown fields in {op_cls.TYPE} call: {sorted(extra)[:5]}")
        values = {f.name: _field_from_json(f.name, data.get(f.name)) for f in fields(op_cls)}
        op = op_cls(**values)
        _check_op(op)
        return cls(op, _hex(data.get("signature"), 65, "signature"))


def sign_op(key: PayerKey, domain: PaymentDomain, op: LedgerOp) -> SignedOp:
    if key.address != op.account:
        raise InvalidSignature("a ledger call must be signed by the account it spends from")
    _check_op(op)
    return SignedOp(op, key.sign_digest(domain.typed_digest(op.struct_hash())))


def _check_op(op: LedgerOp) -> None:
    if not 0 <= op.nonce <= U64_MAX:
        raise MalformedMessage("nonce out of range")
    if isinstance(op, OpenChannel | TopUpChannel) and not 0 <= op.expires_at <= U64_MAX:
        raise MalformedMessage("expiry out of range")
    if isinstance(op, OpenChannel):
        if not 0 < op.deposit <= U128_MAX:
            raise MalformedMessage("deposit must be positive")
        if len(op.salt) != 32:
            raise MalformedMessage("salt is 32 bytes")
        if op.payer == op.payee:
            raise MalformedMessage("a channel needs two different accounts")
    if isinstance(op, TopUpChannel | ReclaimChannel) and len(op.channel_id) != 32:
        raise MalformedMessage("channel id is 32 bytes")
    if isinstance(op, TopUpChannel) and not 0 <= op.amount <= U128_MAX:
        raise MalformedMessage("top-up amount out of range")


_ADDRESS_FIELDS = {"payer", "payee"}
_BYTES_FIELDS = {"salt": 32, "channel_id": 32}
_INT_FIELDS = {"deposit", "expires_at", "nonce", "amount"}


def _field_to_json(value: object) -> str:
    if isinstance(value, TronAddress):
        return value.base58()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Asset):
        return value.code.name.lower()
    return str(value)


def _field_from_json(name: str, value: object) -> Any:
    if not isinstance(value, str) or len(value) > MAX_JSON_TEXT:
        raise MalformedMessage(f"field {name!r} must be a string of at most {MAX_JSON_TEXT}")
    if name in _ADDRESS_FIELDS:
        return TronAddress.parse(value)
    if name in _BYTES_FIELDS:
        return _hex(value, _BYTES_FIELDS[name], name)
    if name in _INT_FIELDS:
        if not value.isascii() or not value.isdigit() or len(value) > 40:
            raise MalformedMessage(f"field {name!r} must be a non-negative decimal integer")
        return int(value)
    if name == "asset":
        try:
            return asset_by_code(AssetCode[value.upper()])
        except KeyError as exc:
            raise MalformedMessage(f"unknown asset {value!r}") from exc
    raise MalformedMessage(f"unexpected field {name!r}")


def _hex(value: object, size: int, name: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size:
        raise MalformedMessage(f"{name} must be {size} bytes of hex")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise MalformedMessage(f"{name} is not hex") from exc
