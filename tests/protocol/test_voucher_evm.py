"""A real EVM accepts Atlas vouchers: the committed VoucherCheck bytecode, run in revm.

tests/contracts/VoucherCheck.sol recomputes the EIP-712 digest in Solidity and
calls ``ecrecover``; tests/contracts/VoucherCheck.json holds its bytecode,
compiled with solc (see tests/contracts/README.md; no compiler is needed here).
These tests deploy that bytecode in an in-process EVM (PyPI ``pyrevm``) and check
that vouchers made by ``Voucher.create`` recover to exactly their payer, that
tampering moves the recovered address, and that high-s and malformed
signatures are refused on-chain as they are by ``recover_signer``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyrevm
import pytest
from Crypto.Hash import keccak
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from requester.protocol import (
    BTT,
    BTT_LEGACY,
    BTT_LOCAL,
    LOCAL_CHAIN_ID,
    LOCAL_LEDGER_CONTRACT,
    TRON_MAINNET_CHAIN_ID,
    Asset,
    InvalidSignature,
    PayerKey,
    PaymentDomain,
    ProtocolError,
    TronAddress,
    Voucher,
    asset_id,
    channel_id,
    recover_signer,
)
from requester.protocol.payment_domain import DOMAIN_TYPEHASH
from requester.protocol.voucher import VOUCHER_TYPEHASH
from tests.conftest import PAYEE_SECRET, PAYER_SECRET

CONTRACTS = Path(__file__).resolve().parent.parent / "contracts"
ARTIFACT: Any = json.loads((CONTRACTS / "VoucherCheck.json").read_text(encoding="utf-8"))
SOLC_VERSION = "0.8.28+commit.7893614a"

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DEPLOYER = "0x" + "a7" * 20
CALLER = "0x" + "c4" * 20
ECRECOVER = "0x" + "00" * 19 + "01"
VOUCHER_TUPLE = "(bytes32,address,address,bytes32,uint256)"


def keccak256(data: bytes) -> bytes:
    return bytes(keccak.new(data=data, digest_bits=256).digest())


TRON_STANDIN_CONTRACT = keccak256(b"atlas.test-vector.tron-ledger")[12:]
"""No Atlas ledger is deployed on TRON yet: the stand-in address of tests/vectors/voucher.json."""


def selector(signature: str) -> bytes:
    return keccak256(signature.encode())[:4]


class Reverted(Exception):
    """The call reverted; ``data`` is the revert payload (custom error selector + args)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data.hex())
        self.data = data


class VoucherCheck:
    """The deployed contract, called with ABI-encoded arguments."""

    def __init__(self) -> None:
        self.evm = pyrevm.EVM()
        self.creation = bytes.fromhex(ARTIFACT["bytecode"].removeprefix("0x"))
        self.address = str(self.evm.deploy(DEPLOYER, self.creation))

    def code(self) -> bytes:
        code = self.evm.get_code(self.address)
        assert code is not None, "contract was not deployed"
        return bytes(code)

    def raw_call(self, to: str, calldata: bytes) -> bytes:
        try:
            return bytes(self.evm.message_call(CALLER, to, calldata))
        except RuntimeError as exc:
            match = re.search(r"Revert \{.*output: 0x([0-9a-fA-F]*)", str(exc))
            if match is None:
                raise
            raise Reverted(bytes.fromhex(match.group(1))) from exc

    def call(self, signature: str, types: list[str], args: list[Any], returns: str) -> Any:
        sel = selector(signature)
        assert sel.hex() == ARTIFACT["methodIdentifiers"][signature]
        out = self.raw_call(self.address, sel + abi_encode(types, args))
        return abi_decode([returns], out)[0]

    def bytes32(self, signature: str, types: list[str], args: list[Any]) -> bytes:
        return bytes(self.call(signature, types, args, "bytes32"))

    def domain_separator(self, domain: PaymentDomain) -> bytes:
        return self.bytes32(
            "domainSeparator(uint256,address)",
            ["uint256", "address"],
            [domain.chain_id, domain.contract],
        )

    def struct_hash(self, voucher: Voucher) -> bytes:
        return self.bytes32(f"structHash({VOUCHER_TUPLE})", [VOUCHER_TUPLE], [fields(voucher)])

    def digest(self, voucher: Voucher) -> bytes:
        return self.bytes32(
            f"voucherDigest(uint256,address,{VOUCHER_TUPLE})",
            ["uint256", "address", VOUCHER_TUPLE],
            [voucher.domain.chain_id, voucher.domain.contract, fields(voucher)],
        )

    def recover(self, voucher: Voucher, signature: bytes | None = None) -> bytes:
        """``recoverSigner``: the 20-byte address the contract recovers."""
        sig = voucher.signature if signature is None else signature
        signer = self.call(
            f"recoverSigner(uint256,address,{VOUCHER_TUPLE},bytes)",
            ["uint256", "address", VOUCHER_TUPLE, "bytes"],
            [voucher.domain.chain_id, voucher.domain.contract, fields(voucher), sig],
            "address",
        )
        return bytes.fromhex(str(signer).removeprefix("0x"))

    def is_signed_by_payer(self, voucher: Voucher, signature: bytes | None = None) -> bool:
        sig = voucher.signature if signature is None else signature
        return bool(
            self.call(
                f"isSignedByPayer(uint256,address,{VOUCHER_TUPLE},bytes)",
                ["uint256", "address", VOUCHER_TUPLE, "bytes"],
                [voucher.domain.chain_id, voucher.domain.contract, fields(voucher), sig],
                "bool",
            )
        )


def fields(voucher: Voucher) -> tuple[bytes, bytes, bytes, bytes, int]:
    """The Solidity ``Voucher`` struct: the fields of docs/protocol.md 6.1, EVM addresses."""
    return (
        voucher.channel_id,
        voucher.payer.evm,
        voucher.payee.evm,
        asset_id(voucher.asset),
        voucher.amount,
    )


def error(name: str, *args: tuple[str, Any]) -> bytes:
    """Revert data of the custom error ``name(types...)`` with ``args``."""
    types = [t for t, _ in args]
    assert any(e["type"] == "error" and e["name"] == name for e in ARTIFACT["abi"])
    return selector(f"{name}({','.join(types)})") + abi_encode(types, [v for _, v in args])


@pytest.fixture(scope="module")
def contract() -> VoucherCheck:
    return VoucherCheck()


PAYER = PayerKey(PAYER_SECRET)
PAYEE = PayerKey(PAYEE_SECRET).address
DOMAINS = {
    "local": (PaymentDomain(LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT), BTT_LOCAL),
    "tron-btt": (PaymentDomain(TRON_MAINNET_CHAIN_ID, TRON_STANDIN_CONTRACT), BTT),
    "tron-legacy": (PaymentDomain(TRON_MAINNET_CHAIN_ID, TRON_STANDIN_CONTRACT), BTT_LEGACY),
    "extremes": (PaymentDomain(2**64 - 1, b"\xff" * 20), BTT_LOCAL),
}
AMOUNTS = (0, 1, 10**18, 2**128 - 1)


def make_voucher(
    domain: PaymentDomain,
    asset: Asset,
    amount: int,
    key: PayerKey = PAYER,
    payee: TronAddress = PAYEE,
    salt: bytes = bytes(32),
) -> Voucher:
    cid = channel_id(domain, key.address, payee, asset, salt)
    return Voucher.create(
        key, domain=domain, channel_id=cid, payee=payee, asset=asset, amount=amount
    )


def test_artifact_is_compiled_from_the_committed_source() -> None:
    source = (CONTRACTS / "VoucherCheck.sol").read_bytes()
    assert hashlib.sha256(source).hexdigest() == ARTIFACT["sourceSha256"], (
        "VoucherCheck.sol changed: recompile it (tests/contracts/README.md)"
    )
    assert ARTIFACT["compiler"]["version"].startswith(SOLC_VERSION)
    assert ARTIFACT["settings"]["evmVersion"] == "paris"


def test_deployed_code_is_the_committed_runtime(contract: VoucherCheck) -> None:
    runtime = bytes.fromhex(ARTIFACT["deployedBytecode"].removeprefix("0x"))
    code = contract.code()
    # revm pads analysed code with zero bytes (STOP) after the end.
    assert code[: len(runtime)] == runtime
    assert not code[len(runtime) :].strip(b"\x00")


def test_contract_constants_are_the_protocol_ones(contract: VoucherCheck) -> None:
    def constant(name: str) -> bytes:
        return contract.bytes32(f"{name}()", [], [])

    assert constant("DOMAIN_TYPEHASH") == DOMAIN_TYPEHASH
    assert constant("VOUCHER_TYPEHASH") == VOUCHER_TYPEHASH
    assert constant("NAME_HASH") == keccak256(b"Atlas")
    assert constant("VERSION_HASH") == keccak256(b"1")


@pytest.mark.parametrize("amount", AMOUNTS)
@pytest.mark.parametrize("where", DOMAINS)
def test_contract_recovers_the_payer(contract: VoucherCheck, where: str, amount: int) -> None:
    domain, asset = DOMAINS[where]
    voucher = make_voucher(domain, asset, amount)
    # Every intermediate value agrees, so a mismatch would say exactly where.
    assert contract.domain_separator(domain) == domain.separator
    assert contract.struct_hash(voucher) == voucher.struct_hash()
    assert contract.digest(voucher) == voucher.digest()
    assert contract.recover(voucher) == voucher.payer.evm == PAYER.address.evm
    assert contract.is_signed_by_payer(voucher)


def test_contract_accepts_vouchers_as_received_on_the_wire(contract: VoucherCheck) -> None:
    domain, asset = DOMAINS["tron-btt"]
    sent = make_voucher(domain, asset, 123_456_789 * 10**12)
    received = Voucher.from_header(sent.to_header())
    assert contract.recover(received, received.signature) == received.payer.evm
    assert contract.is_signed_by_payer(received)


def test_contract_recovers_many_keys_and_both_v_values(contract: VoucherCheck) -> None:
    domain, asset = DOMAINS["local"]
    seen_v = set()
    for i in range(24):
        key = PayerKey(hashlib.sha256(b"atlas.evm-test-key.%d" % i).digest())
        voucher = make_voucher(domain, asset, 10**15 * (i + 1), key=key, salt=bytes([i]) * 32)
        seen_v.add(voucher.signature[64])
        assert contract.recover(voucher) == key.address.evm
        assert contract.is_signed_by_payer(voucher)
    assert seen_v == {27, 28}


@pytest.mark.parametrize(
    "change",
    [
        "amount+1",
        "amount-1",
        "channel_id",
        "payee",
        "asset",
        "chain_id",
        "contract",
    ],
)
def test_tampered_voucher_recovers_another_address(contract: VoucherCheck, change: str) -> None:
    domain, asset = DOMAINS["tron-btt"]
    voucher = make_voucher(domain, asset, 5 * 10**18)
    flipped_id = bytes([voucher.channel_id[0] ^ 1]) + voucher.channel_id[1:]
    tampered = {
        "amount+1": replace(voucher, amount=voucher.amount + 1),
        "amount-1": replace(voucher, amount=voucher.amount - 1),
        "channel_id": replace(voucher, channel_id=flipped_id),
        "payee": replace(voucher, payee=PAYER.address),
        "asset": replace(voucher, asset=BTT_LEGACY),
        "chain_id": replace(voucher, domain=PaymentDomain(LOCAL_CHAIN_ID, domain.contract)),
        "contract": replace(voucher, domain=PaymentDomain(domain.chain_id, LOCAL_LEDGER_CONTRACT)),
    }[change]  # fmt: skip
    recovered = contract.recover(tampered)
    assert recovered not in (voucher.payer.evm, bytes(20))
    assert not contract.is_signed_by_payer(tampered)
    # The Python verifier agrees with the chain on who signed it.
    assert recover_signer(tampered.digest(), tampered.signature, "test").evm == recovered


def high_s_form(signature: bytes) -> bytes:
    """The other valid ECDSA signature of the same digest and key: (r, n - s, v flipped)."""
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])


def test_high_s_signature_is_refused(contract: VoucherCheck) -> None:
    domain, asset = DOMAINS["tron-btt"]
    voucher = make_voucher(domain, asset, 10**18)
    high = high_s_form(voucher.signature)
    assert int.from_bytes(high[32:64], "big") > SECP256K1_N // 2

    # The bare precompile accepts the malleated form and recovers the payer ...
    out = contract.raw_call(ECRECOVER, voucher.digest() + bytes(31) + high[64:] + high[:64])
    assert out == bytes(12) + voucher.payer.evm
    # ... so only the contract's low-s rule refuses it, as recover_signer does.
    for call in (contract.recover, contract.is_signed_by_payer):
        with pytest.raises(Reverted) as info:
            call(voucher, high)
        assert info.value.data == error("HighOrZeroS")
    with pytest.raises(InvalidSignature):
        recover_signer(voucher.digest(), high, "test")


@pytest.mark.parametrize("case", ["zero-s", "v=0", "v=29", "short", "long", "zero-r"])
def test_malformed_signature_is_refused(contract: VoucherCheck, case: str) -> None:
    domain, asset = DOMAINS["local"]
    voucher = make_voucher(domain, asset, 42)
    sig = voucher.signature
    bad, expected = {
        "zero-s": (sig[:32] + bytes(32) + sig[64:], error("HighOrZeroS")),
        "v=0": (sig[:64] + b"\x00", error("BadV", ("uint8", 0))),
        "v=29": (sig[:64] + b"\x1d", error("BadV", ("uint8", 29))),
        "short": (sig[:64], error("BadSignatureLength", ("uint256", 64))),
        "long": (sig + b"\x00", error("BadSignatureLength", ("uint256", 66))),
        "zero-r": (bytes(32) + sig[32:], error("Unrecoverable")),
    }[case]
    with pytest.raises(Reverted) as info:
        contract.recover(voucher, bad)
    assert info.value.data == expected
    # The wire format and the Python verifier refuse the same signatures.
    with pytest.raises(ProtocolError):
        recover_signer(voucher.digest(), bad, "test")
