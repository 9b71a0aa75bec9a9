"""The ``AtlasChannels`` contract as data: call encodings, channel views, refusals.

Sans-IO: bytes and dicts in, bytes and dicts out. :mod:`requester.tron.ledger`
does the calls. A channel read from ``channels(id)`` becomes the SAME view the
embedded ledger answers (``docs/ledger.md``: base58 addresses, the asset's URI,
amounts as decimal strings, times as ints, status ``open``/``reclaimed``), and
a revert becomes the same :class:`LedgerError` (status and code) the embedded
ledger gives for that refusal: each custom error of the contract is named after
a refusal code (``ChannelExists`` is ``409 channel_exists``).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any

from requester.ledger_client import LedgerError
from requester.protocol import ASSETS, Asset, TronAddress
from requester.protocol.payment_domain import keccak256
from requester.protocol.voucher import asset_id

ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)
ZERO_ADDRESS = bytes(20)

STATUS_OF_CODE = {
    "bad_request": 400, "malformed_message": 400, "invalid_signature": 400,
    "wrong_binding": 400, "insufficient_funds": 402, "not_found": 404,
}  # fmt: skip
"""HTTP status of each refusal code as the embedded ledger answers it; any other is 409."""

CODE_OF_ERROR = {
    "BadSignatureLength": "invalid_signature", "HighOrZeroS": "invalid_signature",
    "BadV": "invalid_signature", "FeeOnTransfer": "token_refused",
}  # fmt: skip
"""Contract errors whose refusal code is not their name in snake case: the embedded ledger
answers any malformed signature ``invalid_signature``."""

CHANNEL_FIELDS = ("payer", "expiresAt", "payee", "openedAt", "deposit", "redeemed", "status")


def encode(types: list[str], values: list[Any]) -> bytes:
    """``abi.encode`` (eth_abi; an address as its 20 EVM bytes)."""
    from eth_abi.abi import encode as abi_encode

    return bytes(abi_encode(types, [_evm(v) for v in values]))


def decode(types: list[str], data: bytes) -> tuple[Any, ...]:
    from eth_abi.abi import decode as abi_decode

    return tuple(abi_decode(types, data))


def _evm(value: Any) -> Any:
    return "0x" + value.evm.hex() if isinstance(value, TronAddress) else value


def selector(signature: str) -> bytes:
    return keccak256(signature.encode())[:4]


def signature_of(entry: dict[str, Any]) -> str:
    """``name(type,...)`` of an ABI entry (tuples are not used by these contracts)."""
    return f"{entry['name']}({','.join(i['type'] for i in entry.get('inputs', []))})"


def output_types(abi: list[dict[str, Any]], name: str) -> list[str]:
    entry = next(e for e in abi if e.get("type") == "function" and e.get("name") == name)
    return [o["type"] for o in entry.get("outputs", [])]


def asset_of(raw_id: bytes) -> Asset:
    """The asset whose id (keccak256 of its URI) a contract was deployed with."""
    for asset in ASSETS.values():
        if asset_id(asset) == raw_id:
            return asset
    why = f"the contract's asset id {raw_id.hex()} is no asset Atlas knows"
    raise LedgerError(502, "bad_ledger_response", why)


def tron_address(evm: str | bytes) -> TronAddress:
    raw = bytes.fromhex(evm.removeprefix("0x")) if isinstance(evm, str) else evm
    return TronAddress(b"\x41" + raw[-20:])


@dataclass(frozen=True)
class ChannelContract:
    """What one deployed channel contract's ABI says: output types and its errors."""

    abi: list[dict[str, Any]]
    statuses: tuple[str, ...] = ("none", "open", "reclaimed")
    """The contract's status enum, by value (0 is a channel that does not exist)."""

    def errors(self) -> dict[bytes, tuple[str, list[str]]]:
        """Selector of each custom error: its name and argument types."""
        return {
            selector(signature_of(e)): (e["name"], [i["type"] for i in e.get("inputs", [])])
            for e in self.abi if e.get("type") == "error"
        }  # fmt: skip

    def channel_view(self, channel_id: bytes, raw: bytes, asset: Asset) -> dict[str, Any] | None:
        """``channels(id)``'s answer as the embedded ledger's channel view; None: no channel."""
        values = dict(zip(CHANNEL_FIELDS, decode(output_types(self.abi, "channels"), raw),
                          strict=True))  # fmt: skip
        payer = bytes.fromhex(str(values["payer"]).removeprefix("0x"))
        if payer == ZERO_ADDRESS:
            return None
        status = int(values["status"])
        name = self.statuses[status] if status < len(self.statuses) else str(status)
        return {
            "channel_id": channel_id.hex(),
            "payer": tron_address(payer).base58(),
            "payee": tron_address(str(values["payee"])).base58(),
            "asset": asset.uri,
            "deposit": str(int(values["deposit"])),
            "redeemed": str(int(values["redeemed"])),
            "expires_at": int(values["expiresAt"]),
            "opened_at": int(values["openedAt"]),
            "status": name,
        }

    def refusal(self, data: bytes, doing: str) -> LedgerError:
        """The revert data of a call as the refusal the embedded ledger would give."""
        known = self.errors().get(data[:4])
        if known is not None:
            name, types = known
            code = CODE_OF_ERROR.get(name) or snake_case(name)
            try:
                args = decode(types, data[4:]) if types else ()
            except Exception:  # eth_abi raises many kinds; the name is enough
                args = ()
            detail = f"{doing} refused by the channel contract: {name}{_args(args)}"
            return LedgerError(STATUS_OF_CODE.get(code, 409), code, detail)
        if data[:4] == ERROR_STRING:
            try:
                (message,) = decode(["string"], data[4:])
            except Exception:
                message = data.hex()
            return LedgerError(409, "contract_refused", f"{doing} reverted: {message}")
        if data[:4] == PANIC:
            return LedgerError(409, "contract_refused", f"{doing} panicked: {data[4:].hex()}")
        shown = data.hex() or "no data"
        return LedgerError(409, "contract_refused", f"{doing} reverted ({shown})")


def _args(args: tuple[Any, ...]) -> str:
    return "" if not args else "(" + ", ".join(str(_shown(a)) for a in args) + ")"


def _shown(value: Any) -> Any:
    return "0x" + value.hex() if isinstance(value, bytes) else value


def snake_case(name: str) -> str:
    """``ChannelExists`` as ``channel_exists``: a contract error's refusal code."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def receipt_refusal(contract: ChannelContract, receipt: dict[str, Any], doing: str,
                    fee_limit: int) -> LedgerError:  # fmt: skip
    """A FAILED receipt (``gettransactioninfobyid``) as a refusal: the transaction was
    included but applied nothing."""
    result = str(receipt.get("receipt", {}).get("result", ""))
    if result == "OUT_OF_ENERGY":
        return LedgerError(
            402, "out_of_energy",
            f"{doing} ran out of energy within its fee limit of {fee_limit / 1e6:g} TRX and "
            f"changed nothing (fee paid: {int(receipt.get('fee', 0)) / 1e6:g} TRX); "
            "raise tron_fee_limit",
        )  # fmt: skip
    data = bytes.fromhex((receipt.get("contractResult") or [""])[0] or "")
    if result == "REVERT" or data:
        return contract.refusal(data, doing)
    message = receipt.get("resMessage", "")
    with contextlib.suppress(ValueError):
        message = bytes.fromhex(message).decode()
    return LedgerError(409, "contract_refused", f"{doing} failed ({result}): {message}")
