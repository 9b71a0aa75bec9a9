"""Who signs what: Ed25519 node keys for edges, secp256k1 TRON keys for payers.

Edges sign manifests, chunk statements and quotes with Ed25519 (fast, small,
deterministic). Payers sign vouchers with the secp256k1 key of their TRON
account, because that is what a TRON contract can check with ``ecrecover``.

TRON keys are handled with coincurve (libsecp256k1) and base58 directly, the two
libraries tronpy's own ``tronpy.keys`` wraps: importing ``tronpy`` loads its whole
client (httpx, pydantic, eth-utils: 0.3 s at every ``atlas`` start), and its key
objects cost a new libsecp256k1 context per signature, on the per-chunk path.
``tests/protocol/test_identity.py`` checks both give the same addresses and signatures.
"""

from __future__ import annotations

from dataclasses import dataclass

import base58
import nacl.exceptions
import nacl.signing
from coincurve import PrivateKey as Secp256k1Secret
from coincurve import PublicKey as Secp256k1Public

from requester.protocol.errors import InvalidSignature, MalformedMessage
from requester.protocol.payment_domain import keccak256

NODE_ID_SIZE = 32
ED25519_SIG_SIZE = 64
TRON_ADDRESS_SIZE = 21
TRON_ADDRESS_PREFIX = 0x41
SECP256K1_SIG_SIZE = 65
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SECP256K1_HALF_N = _SECP256K1_N // 2
VERIFIED_MESSAGE = 256
"""Longest message whose good signature :meth:`NodeId.verify` remembers (a chunk statement
signs 76 bytes, a seal 80, a quote 170); a head is checked every time."""
VERIFIED_KEPT = 256
"""Good signatures remembered at most (all are forgotten when full): about 130 KiB at most."""
_verified: dict[tuple[bytes, bytes, bytes], None] = {}


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
        """Raise :class:`InvalidSignature` unless ``signature`` is this node's over ``message``.

        A short message (a chunk statement, a seal, a quote) verified before is not checked
        again: the same key, message and signature verify the same way every time, and a
        proxy answering a page asset from a fresh head gets the same statement with every
        request (60 us of Ed25519 each, about 4 % of its CPU per request)."""
        if len(signature) != ED25519_SIG_SIZE:
            raise MalformedMessage(f"{what}: signature must be {ED25519_SIG_SIZE} bytes")
        known = (self.raw, message, signature) if len(message) <= VERIFIED_MESSAGE else None
        if known is not None and known in _verified:
            return
        try:
            nacl.signing.VerifyKey(self.raw).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
            raise InvalidSignature(
                f"{what}: signature does not verify for node {self.hex()}"
            ) from exc
        if known is not None:
            if len(_verified) >= VERIFIED_KEPT:
                _verified.clear()  # one call, safe beside a worker thread's checks
            _verified[known] = None

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
        """Accept the base58check form (``T...``), 42 hex digits (``41...``) or an EVM
        address (``0x`` and 40 hex digits)."""
        if not isinstance(text, str) or not 25 <= len(text) <= 64:
            raise MalformedMessage(f"not a TRON address: {str(text)[:80]!r}")
        try:
            if text.startswith("T") and len(text) == 34:
                raw = base58.b58decode_check(text)
            elif text.startswith("0x") and len(text) == 42:
                raw = bytes([TRON_ADDRESS_PREFIX]) + bytes.fromhex(text[2:])
            elif len(text) == 42:
                raw = bytes.fromhex(text)
            else:
                raise ValueError("neither base58check nor hex")
            return cls(raw)
        except (ValueError, MalformedMessage) as exc:
            raise MalformedMessage(f"not a TRON address: {text[:80]!r}") from exc

    @classmethod
    def of_public_key(cls, public: Secp256k1Public) -> TronAddress:
        """``0x41`` and the last 20 bytes of the keccak256 of the uncompressed key."""
        point = public.format(compressed=False)[1:]
        return cls(bytes([TRON_ADDRESS_PREFIX]) + keccak256(point)[12:])

    @property
    def evm(self) -> bytes:
        """The 20-byte address a TVM/EVM contract sees (``ecrecover`` returns this)."""
        return self.raw[1:]

    def base58(self) -> str:
        return base58.b58encode_check(self.raw).decode("ascii")

    def __str__(self) -> str:
        return self.base58()


class PayerKey:
    """A payer's TRON secp256k1 key; signs 32-byte digests recoverably."""

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) != 32:
            raise MalformedMessage("not a secp256k1 private key: it must be 32 bytes")
        if not 0 < int.from_bytes(secret, "big") < _SECP256K1_N:
            raise MalformedMessage("not a secp256k1 private key: out of range")
        self._key = Secp256k1Secret(secret)
        self.address = TronAddress.of_public_key(self._key.public_key)

    @classmethod
    def generate(cls) -> PayerKey:
        return cls(Secp256k1Secret().secret)

    @property
    def secret(self) -> bytes:
        return bytes(self._key.secret)

    def sign_digest(self, digest: bytes) -> bytes:
        """65 bytes ``r ‖ s ‖ v`` with low ``s`` and ``v`` in {27, 28}, as ``ecrecover`` takes.
        (libsecp256k1 signs deterministically, RFC 6979, and always with low ``s``.)"""
        sig = self._key.sign_recoverable(digest, hasher=None)
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
        public = Secp256k1Public.from_signature_and_message(
            signature[:64] + bytes([signature[64] - 27]), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises ValueError or a bare Exception
        raise InvalidSignature(f"{what}: signature does not recover a key") from exc
    return TronAddress.of_public_key(public)
