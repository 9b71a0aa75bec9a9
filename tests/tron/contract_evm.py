"""The channel contract and a test token deployed in an in-process EVM (pyrevm), with a clock.

The bytecode is the committed solc output (requester/tron/contracts/); nothing is
compiled here. Calls are encoded from the artifacts' ABIs, reverts come back as
:class:`Reverted` with the custom error decoded by its selector, and after every
transaction, applied or refused, the contract's token balance must equal the sum of
``deposit - redeemed`` over its open channels.

pyrevm 0.3.7 never closes a transaction: accounts and slots touched by an earlier call
stay warm, with the original values of the first call, so its gas figure for a later
call is too low. :meth:`Chain.gas` therefore copies the state into a fresh EVM, every
slot cold and clean, and runs the call there.
"""

from __future__ import annotations

import re
from typing import Any

import pyrevm
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from requester.protocol import (
    BTT,
    TRON_MAINNET_CHAIN_ID,
    PayerKey,
    PaymentDomain,
    Voucher,
    asset_id,
)
from requester.protocol.payment_domain import keccak256
from requester.tron.artifacts import Artifact, load
from tests.conftest import PAYEE_SECRET, PAYER_SECRET

CHANNELS = load("AtlasChannels")
PAYER_KEY = PayerKey(PAYER_SECRET)
PAYER = "0x" + PAYER_KEY.address.evm.hex()
PAYEE_ADDRESS = PayerKey(PAYEE_SECRET).address
PAYEE = "0x" + PAYEE_ADDRESS.evm.hex()
RELAYER = "0x" + "c4" * 20  # a third party: submits vouchers, tries what only payers may do
DEPLOYER = "0x" + "a7" * 20
UNIT = 10**18  # one BTT
NOW = 1_800_000_000
DAY = 86_400
GRACE = 6 * 3600
TOKEN_SLOTS = {"totalSupply": 2, "balanceOf": 3, "allowance": 4}  # TestTokenBase's layout
LOCK_SLOT, CHANNELS_SLOT = 1, 0  # AtlasChannels' layout


class Reverted(Exception):
    """A refused call: ``data`` is the revert payload, ``error`` its decoded custom error."""

    def __init__(self, data: bytes, error: tuple[Any, ...] | None) -> None:
        super().__init__(error or data.hex())
        self.data = data
        self.error = error


def mapping_slot(key: bytes | str, slot: int) -> int:
    """The storage slot of ``mapping[key]`` declared at ``slot`` (Solidity's layout)."""
    raw = bytes.fromhex(key.removeprefix("0x")) if isinstance(key, str) else key
    return int.from_bytes(keccak256(raw.rjust(32, b"\0") + slot.to_bytes(32, "big")), "big")


def intrinsic_gas(calldata: bytes) -> int:
    """What a transaction pays before executing: 21000 and 4 or 16 per calldata byte."""
    return 21_000 + sum(16 if b else 4 for b in calldata)


def calldata(artifact: Artifact, name: str, args: tuple[Any, ...]) -> bytes:
    (entry,) = [e for e in artifact.abi if e["type"] == "function" and e["name"] == name]
    types = [i["type"] for i in entry["inputs"]]
    return artifact.selector(name) + abi_encode(types, list(args))


class Chain:
    """One EVM at ``chain_id`` holding ``token`` (a TestTokens contract) and AtlasChannels."""

    def __init__(self, token: str = "AtlasTestToken", chain_id: int = TRON_MAINNET_CHAIN_ID):
        self.chain_id, self.now = chain_id, NOW
        self.evm = self._new_evm()
        self.tokens = load(token)
        self.token = self.evm.deploy(DEPLOYER, self.tokens.bytecode)
        args = abi_encode(["address", "bytes32", "uint64"], [self.token, asset_id(BTT), GRACE])
        self.channels = self.evm.deploy(DEPLOYER, CHANNELS.bytecode + args)
        self.domain = PaymentDomain(chain_id & 0xFFFFFFFF, bytes.fromhex(self.channels[2:]))
        self.ids: list[bytes] = []  # every channel opened, to check the books

    def _new_evm(self) -> pyrevm.EVM:
        block = pyrevm.BlockEnv(timestamp=self.now)
        env = pyrevm.Env(cfg=pyrevm.CfgEnv(chain_id=self.chain_id), block=block)
        return pyrevm.EVM(env=env, spec_id="MERGE")

    def at(self, when: int) -> None:
        """Move the clock: the next blocks have timestamp ``when``."""
        self.now = when
        self.evm.set_block_env(pyrevm.BlockEnv(timestamp=when))

    def _artifact(self, name: str) -> tuple[Artifact, str]:
        if name in CHANNELS.selectors or any(s.startswith(name + "(") for s in CHANNELS.selectors):
            return CHANNELS, self.channels
        return self.tokens, self.token

    def _run(self, evm: pyrevm.EVM, sender: str, name: str, args: tuple[Any, ...]) -> Any:
        artifact, to = self._artifact(name)
        try:
            out = bytes(evm.message_call(sender, to, calldata(artifact, name, args)))
        except RuntimeError as exc:
            match = re.search(r"Revert \{.*output: 0x([0-9a-fA-F]*)", str(exc))
            if match is None:
                raise
            data = bytes.fromhex(match.group(1))
            raise Reverted(data, decode_error(data, artifact)) from exc
        (entry,) = [e for e in artifact.abi if e.get("name") == name]
        values = abi_decode([o["type"] for o in entry["outputs"]], out)
        return values[0] if len(values) == 1 else tuple(values)

    def read(self, name: str, *args: Any) -> Any:
        return self._run(self.evm, RELAYER, name, args)

    def send(self, sender: str, name: str, *args: Any) -> Any:
        """A transaction; the books are checked after it, whether it applies or reverts."""
        try:
            out = self._run(self.evm, sender, name, args)
            if name == "open":
                self.ids.append(bytes(out))
            return out
        finally:
            self.check_books()

    def channel(self, cid: bytes) -> dict[str, Any]:
        fields = ("payer", "expiresAt", "payee", "openedAt", "deposit", "redeemed", "status")
        return dict(zip(fields, self.read("channels", cid), strict=True))

    def balance(self, who: str) -> int:
        return int(self.read("balanceOf", who))

    def check_books(self) -> None:
        channels = [self.channel(cid) for cid in self.ids]
        held = sum(c["deposit"] - c["redeemed"] for c in channels if c["status"] == 1)
        assert self.balance(self.channels) == held

    def fund(self, who: str = PAYER, amount: int = 10 * UNIT) -> None:
        """Mint ``amount`` to ``who`` and let the channel contract pull all of it."""
        self.send(DEPLOYER, "mint", who, amount)
        self.send(who, "approve", self.channels, 2**256 - 1)

    def open(
        self, deposit: int = 3 * UNIT, expires: int = NOW + DAY, salt: bytes = bytes(32)
    ) -> bytes:
        """The payer opens a channel to the payee; returns its id."""
        return bytes(self.send(PAYER, "open", PAYEE, deposit, expires, salt))

    def voucher(self, cid: bytes, amount: int, domain: PaymentDomain | None = None) -> Voucher:
        """The payer's voucher for ``amount`` on ``cid``, signed by the Python SDK."""
        return Voucher.create(
            PAYER_KEY,
            domain=domain or self.domain,
            channel_id=cid,
            payee=PAYEE_ADDRESS,
            asset=BTT,
            amount=amount,
        )

    def redeem(self, cid: bytes, amount: int, signature: bytes | None = None) -> None:
        """A third party submits the payer's voucher (or ``signature`` instead of its own)."""
        sig = self.voucher(cid, amount).signature if signature is None else signature
        self.send(RELAYER, "redeem", cid, amount, sig)

    def gas(self, sender: str, name: str, *args: Any) -> tuple[int, int]:
        """(execution gas before refunds, gas used) of a transaction run as the first of its
        block: in a fresh EVM holding a cold copy of the state. Nothing changes here."""
        fresh = self._new_evm()
        people = [PAYER, PAYEE, RELAYER, self.channels]
        token_slots = [0, 1, TOKEN_SLOTS["totalSupply"]]  # name, symbol, totalSupply
        token_slots += [mapping_slot(p, TOKEN_SLOTS["balanceOf"]) for p in people]
        token_slots.append(
            mapping_slot(self.channels, mapping_slot(PAYER, TOKEN_SLOTS["allowance"]))
        )
        channel_slots = [LOCK_SLOT] + [
            mapping_slot(cid, CHANNELS_SLOT) + i for cid in self.ids for i in range(3)
        ]
        for address, slots in ((self.token, token_slots), (self.channels, channel_slots)):
            fresh.insert_account_info(
                address, pyrevm.AccountInfo(nonce=1, code=self.evm.get_code(address))
            )
            for slot in slots:
                # Inserted under a snapshot that is then reverted, the slot stays in the
                # database while the account load is undone: cold, as a new block finds it.
                mark = fresh.snapshot()
                fresh.insert_account_storage(address, slot, self.evm.storage(address, slot))
                fresh.revert(mark)
        self._run(fresh, sender, name, args)
        result = fresh.result
        assert result is not None and result.is_success
        data = calldata(self._artifact(name)[0], name, args)
        return result.gas_used + result.gas_refunded - intrinsic_gas(data), result.gas_used


def decode_error(data: bytes, artifact: Artifact) -> tuple[Any, ...] | None:
    """``(name, *args)`` of the custom error ``data`` encodes (addresses as lowercase hex)."""
    sig = CHANNELS.error_of(data) or artifact.error_of(data)
    if sig is None:
        return None
    name, types = sig.rstrip(")").split("(")
    args = abi_decode(types.split(",") if types else [], data[4:])
    return (name, *(a.lower() if isinstance(a, str) and a.startswith("0x") else a for a in args))
