"""Where a payment is valid: the EIP-712 / TIP-712 domain of a channel ledger.

A voucher's digest is bound to one chain and one ledger contract, so a voucher
for the local ledger can never be redeemed on TRON mainnet or another ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import sha3

from requester.protocol.errors import MalformedMessage

DOMAIN_NAME = "Atlas"
DOMAIN_VERSION = "1"


def keccak256(data: bytes) -> bytes:
    return bytes(sha3.keccak_256(data).digest())


def abi_words(*values: bytes | int) -> bytes:
    """``abi.encode`` of static values, one 32-byte word each: an int as uint256, 32 bytes as
    bytes32, 20 bytes as an address (left-padded). eth_abi does the same for these types,
    but importing it costs 0.16 s at every start of ``atlas``; tests check both agree."""
    words = []
    for value in values:
        if isinstance(value, int):
            if not 0 <= value < 1 << 256:
                raise MalformedMessage(f"uint256 out of range: {value}")
            words.append(value.to_bytes(32, "big"))
        elif len(value) in (20, 32):
            words.append(value.rjust(32, b"\0"))
        else:
            raise MalformedMessage(f"not a bytes32 or an address: {len(value)} bytes")
    return b"".join(words)


DOMAIN_TYPEHASH = keccak256(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


@dataclass(frozen=True)
class PaymentDomain:
    """A ledger: the chain it lives on and the address of its channel contract."""

    chain_id: int
    contract: bytes
    """20-byte EVM form of the channel contract's address (TRON address minus 0x41)."""

    def __post_init__(self) -> None:
        if len(self.contract) != 20:
            raise MalformedMessage("a ledger contract address is 20 bytes")
        if not 0 <= self.chain_id < 1 << 64:
            raise MalformedMessage(f"chain id {self.chain_id} out of range")

    @staticmethod
    @lru_cache(maxsize=64)  # bounded: decoded messages name arbitrary ledgers
    def of(chain_id: int, contract: bytes) -> PaymentDomain:
        """A shared instance per ledger, so decoding a message reuses its separator."""
        return PaymentDomain(chain_id, contract)

    @cached_property
    def separator(self) -> bytes:
        """The EIP-712 domain separator a contract computes in its constructor."""
        return keccak256(
            abi_words(
                DOMAIN_TYPEHASH,
                keccak256(DOMAIN_NAME.encode()),
                keccak256(DOMAIN_VERSION.encode()),
                self.chain_id,
                self.contract,
            )
        )

    def typed_digest(self, struct_hash: bytes) -> bytes:
        """``keccak256(0x1901 ‖ domainSeparator ‖ structHash)``: what the payer signs."""
        return keccak256(b"\x19\x01" + self.separator + struct_hash)


LOCAL_LEDGER_CONTRACT = keccak256(b"atlas.local-ledger.v1")[-20:]
"""Stand-in contract address for the embedded ledger (no contract exists there)."""
