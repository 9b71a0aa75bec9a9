"""The contract machine: pyrevm (revm) running TVM bytecode, with energy and atomic state.

TRON's TVM is an EVM with TRON's own energy table. The node runs contracts in revm
with the Istanbul gas table: the newest EVM revision before access lists (EIP-2929's
cold-access surcharges, which TRON never adopted) that has every opcode solc's
``paris`` target emits (``CHAINID``, ``SELFBALANCE``). Energy is the gas a call uses
minus the EVM's intrinsic transaction gas (21000 plus calldata), which TRON charges as
bandwidth, not energy; a deployment adds 200 per byte of runtime code, as the TVM
does. That is the EVM's gas table, not TRON's exact energy table (TRON's ``SLOAD`` is
50, Istanbul's 800; both charge 20000 to fill an empty storage slot).

Every call runs inside a journal checkpoint: a call that reverts, halts or runs out of
energy leaves no trace in the state, and a constant call is always rolled back.
Addresses here are the 20-byte EVM form (a TRON address without its ``0x41``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyrevm import EVM, AccountInfo, BlockEnv, CfgEnv, Env

from requester.protocol.payment_domain import keccak256

SPEC = "Istanbul"
EMPTY_CODE_HASH = keccak256(b"")
DEPOSIT_PER_BYTE = 200
"""Energy per byte of runtime code a deployment stores (TVM's ``CREATE_DATA``)."""
_REVERT = re.compile(r"Revert \{ gas_used: (\d+), output: 0x([0-9a-fA-F]*) \}")
_HALT = re.compile(r"Halt \{ reason: ([A-Za-z]+)")
_STORED = re.compile(r"StorageChange \{ address: (0x[0-9a-fA-F]{40}), key: (\d+)")
"""A storage write in pyrevm's journal (its ``journal_str``; pyrevm is pinned)."""
HALTS = {
    "OutOfGas": "OUT_OF_ENERGY", "InvalidFEOpcode": "ILLEGAL_OPERATION",
    "OpcodeNotFound": "ILLEGAL_OPERATION", "NotActivated": "ILLEGAL_OPERATION",
    "InvalidJump": "BAD_JUMP_DESTINATION", "StackUnderflow": "STACK_TOO_SMALL",
    "StackOverflow": "STACK_TOO_LARGE", "CallTooDeep": "STACK_OVERFLOW",
    "OutOfOffset": "OUT_OF_MEMORY", "StateChangeDuringStaticCall": "ILLEGAL_OPERATION",
}  # fmt: skip
"""revm's halt reasons as TRON's ``contractResult`` codes (anything else: ``UNKNOWN``)."""


Changes = tuple[dict[str, tuple[int, int, bytes | None]], dict[tuple[str, int], int]]
"""What a call changed: account -> (balance, nonce, code); (account, slot) -> word."""


@dataclass(frozen=True)
class Log:
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True)
class Outcome:
    """What one call did: ``result`` is TRON's ``contractResult`` (``SUCCESS``,
    ``REVERT``, ``OUT_OF_ENERGY``, ...), ``output`` the return or revert data."""

    result: str
    output: bytes
    energy: int
    logs: tuple[Log, ...] = ()
    message: str = ""
    """``resMessage``: why a call failed, as java-tron words it."""

    @property
    def ok(self) -> bool:
        return self.result == "SUCCESS"


def evm_hex(address: bytes) -> str:
    """pyrevm's spelling of a 20-byte address (a 21-byte TRON one loses its ``0x41``)."""
    return "0x" + address[-20:].hex()


def intrinsic_gas(data: bytes) -> int:
    """What the EVM charges a transaction before running it (TRON charges bandwidth)."""
    zeros = data.count(0)
    return 21000 + 4 * zeros + 16 * (len(data) - zeros)


class Machine:
    """One EVM state; calls take an energy limit and say what they did.

    pyrevm never finalizes its journal, so an account loaded once would stay loaded with
    the values of that moment as its "original" storage (EIP-2200 would then price a
    later transaction's writes as writes to dirty slots, 800 instead of 5000). So the
    database is the state, and the journal holds one call at a time: each call runs in
    a checkpoint, what it changed (the accounts it loaded, the slots in its journal) is
    read, the checkpoint is reverted, and the changes are written to the database.
    Every read is made inside a checkpoint too, so it loads nothing for good.
    """

    def __init__(self, chain_id: int) -> None:
        self.evm = EVM(env=Env(cfg=CfgEnv(chain_id=chain_id)), spec_id=SPEC)
        self._codes: dict[bytes, bytes] = {}
        """Code by its hash, as deployed (revm hands code back padded)."""

    def set_block(self, number: int, timestamp: int) -> None:
        """What ``block.number`` and ``block.timestamp`` (seconds) read from now on."""
        self.evm.set_block_env(BlockEnv(number=number, timestamp=timestamp))

    def balance(self, address: bytes) -> int:
        with self._peek():
            return int(self.evm.get_balance(evm_hex(address)))

    def code(self, address: bytes) -> bytes:
        with self._peek():
            return bytes(self.evm.get_code(evm_hex(address)) or b"")

    def storage(self, address: bytes, slot: int) -> int:
        with self._peek():
            return int(self.evm.storage(evm_hex(address), slot))

    def set_balance(self, address: bytes, sun: int) -> None:
        with self._peek():
            info = self.evm.basic(evm_hex(address))
        self._put(evm_hex(address), sun, info.nonce, self._original_code(info))

    def call(
        self, caller: bytes, to: bytes, data: bytes, value: int, energy_limit: int,
        *, commit: bool = True,
    ) -> Outcome:  # fmt: skip
        """Run ``to``'s code; its changes are kept only if it succeeds and ``commit`` is set."""
        outcome, changes = self._run(caller, to, data, value, energy_limit, commit)
        if changes is not None:
            self._apply(changes)
        return outcome

    def create(
        self, caller: bytes, address: bytes, initcode: bytes, value: int, energy_limit: int
    ) -> Outcome:
        """Run ``initcode`` as ``address`` (chosen by the caller: TRON's rule) and store the
        runtime code it returns there (the outcome's ``output``). The init code runs as the
        code of ``address``, so ``address(this)`` is right in the constructor; a failed
        creation leaves nothing."""
        target = evm_hex(address)
        self._put(target, 0, 1, initcode)
        outcome, changes = self._run(caller, address, b"", value, energy_limit, True)
        energy = outcome.energy + DEPOSIT_PER_BYTE * len(outcome.output)
        if changes is not None and energy <= energy_limit:
            changes[0][target] = (changes[0][target][0], 1, outcome.output)
            self._apply(changes)
            return Outcome("SUCCESS", outcome.output, energy, outcome.logs)
        self._put(target, 0, 0, None)
        if not outcome.ok:
            return outcome
        short = f"Not enough energy for saving code: need {energy}, limit {energy_limit}"
        return Outcome("OUT_OF_ENERGY", b"", energy_limit, message=short)

    def _run(
        self, caller: bytes, to: bytes, data: bytes, value: int, energy_limit: int,
        commit: bool,
    ) -> tuple[Outcome, Changes | None]:  # fmt: skip
        """One call in a checkpoint that is always reverted; its changes if it succeeded."""
        intrinsic = intrinsic_gas(data)
        checkpoint = self.evm.snapshot()
        try:
            output = bytes(self.evm.message_call(
                evm_hex(caller), evm_hex(to), data, value, intrinsic + energy_limit))  # fmt: skip
        except RuntimeError as exc:
            self.evm.revert(checkpoint)
            return _failure(str(exc), intrinsic, energy_limit), None
        result = self.evm.result
        energy = (int(result.gas_used) if result is not None else intrinsic) - intrinsic
        logs = tuple(_log(entry) for entry in (result.logs if result is not None else []))
        changes = self._changes() if commit else None
        self.evm.revert(checkpoint)
        return Outcome("SUCCESS", output, energy, logs), changes

    def _apply(self, changes: Changes) -> None:
        accounts, slots = changes
        for address, (balance, nonce, code) in accounts.items():
            self._put(address, balance, nonce, code)
        for (address, slot), word in slots.items():
            inner = self.evm.snapshot()  # writing a slot loads its account: unload it
            self.evm.insert_account_storage(address, slot, word)
            self.evm.revert(inner)

    def _changes(self) -> Changes:
        """What the open call changed: the accounts it loaded, the slots it wrote."""
        accounts = {
            a.lower(): (int(i.balance), int(i.nonce), self._original_code(i))
            for a, i in self.evm.journal_state.items()
        }
        written = {(a.lower(), int(k)) for a, k in _STORED.findall(self.evm.journal_str)}
        return accounts, {(a, k): int(self.evm.storage(a, k)) for a, k in written}

    def _put(self, address: str, balance: int, nonce: int, code: bytes | None) -> None:
        """Write an account's balance, nonce and code to the database (it is not loaded)."""
        info = AccountInfo(balance=balance, nonce=nonce, code=code)  # type: ignore[call-arg]
        self.evm.insert_account_info(address, info)  # (pyrevm's stub omits balance)
        if code:
            self._codes.setdefault(keccak256(code), code)

    def _original_code(self, info: AccountInfo) -> bytes | None:
        """An account's code as deployed: revm pads analysed code with zero bytes (STOP),
        and the padding must not be written back (it would change the code's hash and size)."""
        code, wanted = bytes(info.code or b""), bytes(info.code_hash or b"")
        if not code or wanted == EMPTY_CODE_HASH:
            return None
        if wanted not in self._codes:  # made by a CREATE inside a call: strip the padding
            cut = next((n for n in range(len(code), max(len(code) - 64, 0) - 1, -1)
                        if keccak256(code[:n]) == wanted), len(code))  # fmt: skip
            self._codes[wanted] = code[:cut]
        return self._codes[wanted]

    @contextmanager
    def _peek(self) -> Iterator[None]:
        checkpoint = self.evm.snapshot()
        try:
            yield
        finally:
            self.evm.revert(checkpoint)


def _failure(text: str, intrinsic: int, energy_limit: int) -> Outcome:
    if reverted := _REVERT.search(text):
        used = int(reverted.group(1)) - intrinsic
        return Outcome("REVERT", bytes.fromhex(reverted.group(2)), used,
                       message="REVERT opcode executed")  # fmt: skip
    halted = _HALT.search(text)
    result = HALTS.get(halted.group(1) if halted else "", "UNKNOWN")
    message = (f"Not enough energy: energy limit {energy_limit} reached"
               if result == "OUT_OF_ENERGY" else f"{result}: {text[:200]}")  # fmt: skip
    return Outcome(result, b"", energy_limit, message=message)


def _log(entry: object) -> Log:
    topics, data = entry.data  # type: ignore[attr-defined]
    address = bytes.fromhex(str(entry.address)[2:])  # type: ignore[attr-defined]
    return Log(address, tuple(bytes(t) for t in topics), bytes(data))
