"""Who signs what: Ed25519 node keys for edges, secp256k1 TRON keys for payers.

Edges sign manifests, chunk statements and quotes with Ed25519 (fast, small,
deterministic). Payers sign vouchers with the secp256k1 key of their TRON
account, because that is what a TRON contract can check with ``ecrecover``.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.exceptions
import nacl.signing
from tronpy import keys as tron_keys
from tronpy.exceptions import BadAddress, BadKey, BadSignature

from requester.protocol.errors import InvalidSignature, MalformedMessage

NODE_ID_SIZE = 32
ED25519_SIG_SIZE = 64
TRON_ADDRESS_SIZE = 21
TRON_ADDRESS_PREFIX = 0x41
SECP256K1_SIG_SIZE = 65
_SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


@dataclass(frozen=True, slots=True)
class NodeId:
    """An edge's identity: its Ed25519 public key."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != NODE_ID_SIZE:
            raise MalformedMessage(f"node id must be {NODE_ID_SIZE} bytes, got {len(self.raw)}")

    @classmethod
    def from_hex(cls, text: str) -> NodeId:
        try:
            return cls(bytes.fromhex(text))
        except ValueError as exc:
            raise MalformedMessage(f"node id is not hex: {text[:80]!r}") from exc

    def hex(self) -> str:
        return self.raw.hex()

    def verify(self, message: bytes, signature: bytes, what: str) -> None:
        """Raise :class:`InvalidSignature` unless ``signature`` is this node's over ``message``."""
        if len(signature) != ED25519_SIG_SIZE:
            raise MalformedMessage(f"{what}: signature must be {ED25519_SIG_SIZE} bytes")
        try:
            nacl.signing.VerifyKey(self.raw).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
            raise InvalidSignature(
                f"{what}: signature does not verify for node {self.hex()}"
            ) from exc

    def __str__(self) -> str:
        return self.hex()


class NodeKey:
    """An edge's Ed25519 signing key."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise MalformedMessage("an Ed25519 seed is 32 bytes")
        self._key = nacl.signing.SigningKey(seed)
        self.node_id = NodeId(bytes(self._key.verify_key))

    @classmethod
    def generate(cls) -> NodeKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached signature over ``message``."""
        return bytes(self._key.sign(message).signature)


@dataclass(frozen=True, slots=True, order=True)
class TronAddress:
    """A TRON account address: 21 bytes, ``0x41`` followed by the EVM address."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != TRON_ADDRESS_SIZE or self.raw[0] != TRON_ADDRESS_PREFIX:
            raise MalformedMessage("a TRON address is 21 bytes starting with 0x41")

    @classmethod
    def parse(cls, text: str) -> TronAddress:
        """Accept the base58check form (``T...``) or 42 hex digits (``41...``)."""
        if not isinstance(text, str) or not 25 <= len(text) <= 64:
            raise MalformedMessage(f"not a TRON address: {str(text)[:80]!r}")
        try:
            return cls(tron_keys.to_raw_address(text))
        except (BadAddress, ValueError, TypeError, IndexError) as exc:
            raise MalformedMessage(f"not a TRON address: {text[:80]!r}") from exc

    @property
    def evm(self) -> bytes:
        """The 20-byte address a TVM/EVM contract sees (``ecrecover`` returns this)."""
        return self.raw[1:]

    def base58(self) -> str:
        return str(tron_keys.to_base58check_address(self.raw))

    def __str__(self) -> str:
        return self.base58()


class PayerKey:
    """A payer's TRON secp256k1 key; signs 32-byte digests recoverably."""

    def __init__(self, secret: bytes) -> None:
        try:
            self._key = tron_keys.PrivateKey(secret)
        except BadKey as exc:
            raise MalformedMessage(f"not a secp256k1 private key: {exc}") from exc
        self.address = TronAddress(self._key.public_key.to_address())

    @classmethod
    def generate(cls) -> PayerKey:
        return cls(tron_keys.PrivateKey.random().to_bytes())

    @property
    def secret(self) -> bytes:
        return bytes(self._key.to_bytes())

    def sign_digest(self, digest: bytes) -> bytes:
        """65 bytes ``r ‖ s ‖ v`` with low ``s`` and ``v`` in {27, 28}, as ``ecrecover`` takes."""
        sig = bytes(self._key.sign_msg_hash(digest).to_bytes())
        return sig[:64] + bytes([sig[64] + 27])


def recover_signer(digest: bytes, signature: bytes, what: str) -> TronAddress:
    """The TRON address whose key made ``signature`` over ``digest``.

    Refuses high-``s`` signatures so a signature has one form only (no malleability).
    """
    if len(signature) != SECP256K1_SIG_SIZE:
        raise MalformedMessage(f"{what}: signature must be {SECP256K1_SIG_SIZE} bytes")
    s = int.from_bytes(signature[32:64], "big")
    if s == 0 or s > _SECP256K1_HALF_N:
        raise InvalidSignature(f"{what}: signature s value is zero or not in the lower half")
    if signature[64] not in (27, 28):
        raise InvalidSignature(f"{what}: signature v must be 27 or 28")
    try:
        sig = tron_keys.Signature(signature[:64] + bytes([signature[64] - 27]))
        public = sig.recover_public_key_from_msg_hash(digest)
    except (BadSignature, ValueError) as exc:
        raise InvalidSignature(f"{what}: signature does not recover a key") from exc
    return TronAddress(public.to_address())
