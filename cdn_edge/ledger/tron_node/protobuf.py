"""The protobuf messages of a TRON transaction, read from java-tron's JSON and encoded.

A transaction's id is the SHA-256 of its serialized ``Transaction.raw``, so the node must
turn the JSON tronpy sends into exactly the bytes java-tron would: fields in number
order, proto3 defaults (0, false, empty) left out, a message field present whenever the
JSON has it. :data:`SCHEMAS` declares the fields of the messages tronpy builds
(``TransferContract``, ``TriggerSmartContract``, ``CreateSmartContract`` with its
``SmartContract`` and ABI), numbered as in java-tron's ``.proto`` files. Reading follows
java-tron's ``JsonFormat``: unknown keys and nulls are skipped (solc's ``internalType``
and tuple ``components`` are not in the ABI message, so TRON drops them), bytes are hex,
address fields base58 too when the request is ``visible``, and an all-lowercase enum
name is capitalised (``"function"`` is ``Function``). :func:`to_json` prints a message
back the way java-tron does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from requester.protocol import MalformedMessage, TronAddress

Msg = dict[str, Any]
INT64 = (-(1 << 63), (1 << 63) - 1)
INT32 = (-(1 << 31), (1 << 31) - 1)


class BadMessage(ValueError):
    """JSON that is not a value of its protobuf message; the text says which field."""


@dataclass(frozen=True)
class Field:
    name: str
    number: int
    kind: str
    """``int64``, ``int32``, ``bool``, ``string``, ``bytes``, ``address``, ``enum`` or a
    message name in :data:`SCHEMAS`."""
    repeated: bool = False
    enum: tuple[str, ...] = ()


ENTRY_TYPES = ("UnknownEntryType", "Constructor", "Function", "Event", "Fallback", "Receive",
               "Error")  # fmt: skip
MUTABILITY = ("UnknownMutabilityType", "Pure", "View", "Nonpayable", "Payable")
SCHEMAS: dict[str, tuple[Field, ...]] = {
    "Transaction.raw": (
        Field("ref_block_bytes", 1, "bytes"), Field("ref_block_num", 3, "int64"),
        Field("ref_block_hash", 4, "bytes"), Field("expiration", 8, "int64"),
        Field("data", 10, "bytes"), Field("scripts", 12, "bytes"),
        Field("timestamp", 14, "int64"), Field("fee_limit", 18, "int64"),
    ),
    "TransferContract": (
        Field("owner_address", 1, "address"), Field("to_address", 2, "address"),
        Field("amount", 3, "int64"),
    ),
    "TriggerSmartContract": (
        Field("owner_address", 1, "address"), Field("contract_address", 2, "address"),
        Field("call_value", 3, "int64"), Field("data", 4, "bytes"),
        Field("call_token_value", 5, "int64"), Field("token_id", 6, "int64"),
    ),
    "CreateSmartContract": (
        Field("owner_address", 1, "address"), Field("new_contract", 2, "SmartContract"),
        Field("call_token_value", 3, "int64"), Field("token_id", 4, "int64"),
    ),
    "SmartContract": (
        Field("origin_address", 1, "address"), Field("contract_address", 2, "address"),
        Field("abi", 3, "ABI"), Field("bytecode", 4, "bytes"), Field("call_value", 5, "int64"),
        Field("consume_user_resource_percent", 6, "int64"), Field("name", 7, "string"),
        Field("origin_energy_limit", 8, "int64"), Field("code_hash", 9, "bytes"),
        Field("trx_hash", 10, "bytes"), Field("version", 11, "int32"),
    ),
    "ABI": (Field("entrys", 1, "Entry", repeated=True),),
    "Entry": (
        Field("anonymous", 1, "bool"), Field("constant", 2, "bool"), Field("name", 3, "string"),
        Field("inputs", 4, "Param", repeated=True), Field("outputs", 5, "Param", repeated=True),
        Field("type", 6, "enum", enum=ENTRY_TYPES), Field("payable", 7, "bool"),
        Field("stateMutability", 8, "enum", enum=MUTABILITY),
    ),
    "Param": (Field("indexed", 1, "bool"), Field("name", 2, "string"), Field("type", 3, "string")),
}  # fmt: skip


def parse(schema: str, value: object, visible: bool, where: str = "") -> Msg:
    """A JSON object as a message of ``schema``: each known field read by its kind."""
    if not isinstance(value, Mapping):
        raise BadMessage(f"{where or schema} must be a JSON object")
    found: Msg = {}
    for field in SCHEMAS[schema]:
        item = value.get(field.name)
        if item is None:
            continue
        path = f"{where}.{field.name}" if where else field.name
        if field.repeated:
            if not isinstance(item, list):
                raise BadMessage(f"{path} must be a list")
            found[field.name] = [_read(field, x, visible, path) for x in item]
        else:
            found[field.name] = _read(field, item, visible, path)
    return found


def _read(field: Field, item: object, visible: bool, path: str) -> Any:
    kind = field.kind
    if kind in SCHEMAS:
        return parse(kind, item, visible, path)
    if kind in ("int64", "int32", "bool"):
        return _read_number(kind, item, path)
    if not isinstance(item, str):
        raise BadMessage(f"{path} must be a string")
    if kind == "string":
        return item
    if kind == "enum":
        name = item[0].upper() + item[1:] if item.islower() else item
        if name not in field.enum:
            raise BadMessage(f"{path}: {item[:40]!r} is not one of {', '.join(field.enum)}")
        return name
    if kind == "address" and visible and item.startswith("T"):
        try:
            return TronAddress.parse(item).raw
        except MalformedMessage as exc:
            raise BadMessage(f"{path}: {exc.message}") from None
    try:
        return bytes.fromhex(item)
    except ValueError:
        raise BadMessage(f"{path} must be hex") from None


def _read_number(kind: str, item: object, path: str) -> int | bool:
    if kind == "bool":
        if not isinstance(item, bool):
            raise BadMessage(f"{path} must be true or false")
        return item
    low, high = INT64 if kind == "int64" else INT32
    if isinstance(item, bool) or not isinstance(item, int) or not low <= item <= high:
        raise BadMessage(f"{path} must be an {kind} integer")
    return item


def encode(schema: str, message: Msg, numbers: range = range(1, 1 << 29)) -> bytes:
    """The protobuf bytes of ``message``: fields in number order, defaults left out; only
    the fields numbered in ``numbers`` (a caller writes the others in between)."""
    out = bytearray()
    for field in SCHEMAS[schema]:
        if field.name not in message or field.number not in numbers:
            continue
        items = message[field.name] if field.repeated else [message[field.name]]
        for item in items:
            out += _encode_one(field, item)
    return bytes(out)


def _encode_one(field: Field, item: Any) -> bytes:
    if field.kind in SCHEMAS:  # a message is written when present, even when empty
        return length_delimited(field.number, encode(field.kind, item))
    if field.kind in ("int64", "int32", "bool", "enum"):
        number = field.enum.index(item) if field.kind == "enum" else int(item)
        return varint_field(field.number, number)
    data = item.encode() if field.kind == "string" else item
    return length_delimited(field.number, data) if data else b""


def varint(value: int) -> bytes:
    """A base-128 varint; negative numbers as their 64-bit two's complement, as protobuf."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def varint_field(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value) if value else b""


def length_delimited(number: int, data: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(data)) + data


def to_json(schema: str, message: Msg, visible: bool) -> Msg:
    """``message`` as java-tron prints it: set fields in number order; bytes as hex, an
    address in base58 when ``visible``; enums by name."""
    out: Msg = {}
    for field in SCHEMAS[schema]:
        if field.name not in message:
            continue
        value = message[field.name]
        if field.repeated:
            out[field.name] = [_show(field, v, visible) for v in value]
        elif field.kind in SCHEMAS or _is_set(field, value):
            out[field.name] = _show(field, value, visible)
    return out


def _is_set(field: Field, value: Any) -> bool:
    return value != field.enum[0] if field.kind == "enum" else bool(value)


def _show(field: Field, value: Any, visible: bool) -> Any:
    if field.kind in SCHEMAS:
        return to_json(field.kind, value, visible)
    if field.kind == "address":
        return TronAddress(value).base58() if visible and len(value) == 21 else value.hex()
    return value.hex() if field.kind == "bytes" else value
