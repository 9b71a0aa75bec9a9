"""Where a payment is valid: the EIP-712 / TIP-712 domain of a channel ledger.

A voucher's digest is bound to one chain and one ledger contract, so a voucher
for the local ledger can never be redeemed on TRON mainnet or another ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

from Crypto.Hash import keccak
from eth_abi.abi import encode as abi_encode

from requester.protocol.errors import MalformedMessage

DOMAIN_NAME = "Atlas"
DOMAIN_VERSION = "1"


def keccak256(data: bytes) -> bytes:
    return bytes(keccak.new(data=data, digest_bits=256).digest())


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
            abi_encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    DOMAIN_TYPEHASH,
                    keccak256(DOMAIN_NAME.encode()),
                    keccak256(DOMAIN_VERSION.encode()),
                    self.chain_id,
                    self.contract,
                ],
            )
        )

    def typed_digest(self, struct_hash: bytes) -> bytes:
        """``keccak256(0x1901 ‖ domainSeparator ‖ structHash)``: what the payer signs."""
        return keccak256(b"\x19\x01" + self.separator + struct_hash)


LOCAL_LEDGER_CONTRACT = keccak256(b"atlas.local-ledger.v1")[-20:]
"""Stand-in contract address for the embedded ledger (no contract exists there)."""
