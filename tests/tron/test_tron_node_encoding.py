"""The offline TRON node's transaction ids are java-tron's: SHA-256 of ``Transaction.raw``.

tronpy computes txIDs offline for TRX transfers and contract calls with the protobuf
library and its own copy of TRON's ``.proto``; the node's encoder must give the same id
for every such transaction. tronpy cannot compute a deployment's id, so that one is
checked against protobuf's own serialization of java-tron's ``SmartContract`` message,
declared here field by field from java-tron's ``smart_contract.proto``.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import pytest
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from hypothesis import given
from hypothesis import strategies as st
from tronpy import Tron
from tronpy.contract import Contract
from tronpy.proto import calculate_txid_from_raw_data, tron_pb2
from tronpy.providers import HTTPProvider

from cdn_edge.ledger.tron_node.protobuf import SCHEMAS, BadMessage
from cdn_edge.ledger.tron_node.settings import _funding, whole_units
from cdn_edge.ledger.tron_node.transactions import Unsupported, read_transaction
from requester.protocol import TronAddress
from requester.tron.artifacts import load

TYPE_URL = "type.googleapis.com/protocol."
addresses = st.binary(min_size=20, max_size=20).map(lambda a: "41" + a.hex())
int64 = st.integers(min_value=0, max_value=2**63 - 1)
FIELD_NAMES = sorted(
    {f.name for fields in SCHEMAS.values() for f in fields}
    | {"raw_data", "contract", "parameter", "value", "type", "signature", "Permission_id"}
)


def raw_data(kind: str, value: dict[str, Any], draw_raw: dict[str, Any]) -> dict[str, Any]:
    contract = {"parameter": {"value": value, "type_url": TYPE_URL + kind}, "type": kind}
    return {"contract": [contract], **draw_raw}


raw_fields = st.fixed_dictionaries(
    {
        "ref_block_bytes": st.binary(min_size=2, max_size=2).map(bytes.hex),
        "ref_block_hash": st.binary(min_size=8, max_size=8).map(bytes.hex),
        "expiration": int64,
        "timestamp": int64,
    },
    optional={"fee_limit": int64},
)


@given(owner=addresses, to=addresses, amount=int64, raw=raw_fields)
def test_transfer_txid_is_tronpys(owner: str, to: str, amount: int, raw: dict[str, Any]) -> None:
    data = raw_data("TransferContract",
                    {"owner_address": owner, "to_address": to, "amount": amount}, raw)  # fmt: skip
    assert read_transaction({"raw_data": data}, False).txid.hex() == calculate_txid_from_raw_data(
        data
    )


@given(owner=addresses, contract=addresses, calldata=st.binary(max_size=200), value=int64,
       raw=raw_fields)  # fmt: skip
def test_trigger_txid_is_tronpys(
    owner: str, contract: str, calldata: bytes, value: int, raw: dict[str, Any]
) -> None:
    data = raw_data("TriggerSmartContract", {
        "owner_address": owner, "contract_address": contract, "data": calldata.hex(),
        "call_value": value, "call_token_value": 0, "token_id": 0,
    }, raw)  # fmt: skip
    assert read_transaction({"raw_data": data}, False).txid.hex() == calculate_txid_from_raw_data(
        data
    )


def smart_contract_classes() -> tuple[Any, Any]:
    """java-tron's ``SmartContract`` and ``CreateSmartContract`` as protobuf classes."""
    f = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="atlas_test_smart_contract.proto", package="atlastest", syntax="proto3"
    )

    def add(message: Any, name: str, number: int, kind: int, type_name: str = "",
            repeated: bool = False) -> None:  # fmt: skip
        label = f.LABEL_REPEATED if repeated else f.LABEL_OPTIONAL
        added = message.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            added.type_name = type_name

    smart = file.message_type.add(name="SmartContract")
    abi = smart.nested_type.add(name="ABI")
    entry = abi.nested_type.add(name="Entry")
    for enum, names in (("EntryType", ["UnknownEntryType", "Constructor", "Function", "Event",
                                       "Fallback", "Receive", "Error"]),
                        ("StateMutabilityType", ["UnknownMutabilityType", "Pure", "View",
                                                 "Nonpayable", "Payable"])):  # fmt: skip
        declared = entry.enum_type.add(name=enum)
        for number, value in enumerate(names):
            declared.value.add(name=value, number=number)
    param = entry.nested_type.add(name="Param")
    add(param, "indexed", 1, f.TYPE_BOOL)
    add(param, "name", 2, f.TYPE_STRING)
    add(param, "type", 3, f.TYPE_STRING)
    entry_name = ".atlastest.SmartContract.ABI.Entry"
    for name, number, kind, type_name, repeated in (
        ("anonymous", 1, f.TYPE_BOOL, "", False), ("constant", 2, f.TYPE_BOOL, "", False),
        ("name", 3, f.TYPE_STRING, "", False),
        ("inputs", 4, f.TYPE_MESSAGE, entry_name + ".Param", True),
        ("outputs", 5, f.TYPE_MESSAGE, entry_name + ".Param", True),
        ("type", 6, f.TYPE_ENUM, entry_name + ".EntryType", False),
        ("payable", 7, f.TYPE_BOOL, "", False),
        ("stateMutability", 8, f.TYPE_ENUM, entry_name + ".StateMutabilityType", False),
    ):  # fmt: skip
        add(entry, name, number, kind, type_name, repeated)
    add(abi, "entrys", 1, f.TYPE_MESSAGE, entry_name, repeated=True)
    for name, number, kind, type_name in (
        ("origin_address", 1, f.TYPE_BYTES, ""), ("contract_address", 2, f.TYPE_BYTES, ""),
        ("abi", 3, f.TYPE_MESSAGE, ".atlastest.SmartContract.ABI"),
        ("bytecode", 4, f.TYPE_BYTES, ""),
        ("call_value", 5, f.TYPE_INT64, ""), ("consume_user_resource_percent", 6, f.TYPE_INT64, ""),
        ("name", 7, f.TYPE_STRING, ""), ("origin_energy_limit", 8, f.TYPE_INT64, ""),
    ):  # fmt: skip
        add(smart, name, number, kind, type_name)
    create = file.message_type.add(name="CreateSmartContract")
    add(create, "owner_address", 1, f.TYPE_BYTES)
    add(create, "new_contract", 2, f.TYPE_MESSAGE, ".atlastest.SmartContract")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    classes = message_factory.GetMessages([file], pool=pool)
    return classes["atlastest.SmartContract"], classes["atlastest.CreateSmartContract"]


def java_tron_txid(raw: dict[str, Any]) -> str:
    """The txID of tronpy's deployment JSON, encoded by protobuf with java-tron's messages."""
    smart_class, create_class = smart_contract_classes()
    value = raw["contract"][0]["parameter"]["value"]
    new = value["new_contract"]
    smart = smart_class(
        origin_address=bytes.fromhex(new["origin_address"]),
        bytecode=bytes.fromhex(new["bytecode"]),
        call_value=new["call_value"], name=new["name"],
        consume_user_resource_percent=new["consume_user_resource_percent"],
        origin_energy_limit=new["origin_energy_limit"],
    )  # fmt: skip
    smart.abi.SetInParent()
    for item in new["abi"]["entrys"]:
        entry = smart.abi.entrys.add(name=item.get("name", ""),
                                     anonymous=item.get("anonymous", False))  # fmt: skip
        entry.type = type(entry).EntryType.Value(item["type"].capitalize())
        if "stateMutability" in item:
            mutability = item["stateMutability"].capitalize()
            entry.stateMutability = type(entry).StateMutabilityType.Value(mutability)
        for side in ("inputs", "outputs"):
            for p in item.get(side, []):
                getattr(entry, side).add(
                    name=p["name"], type=p["type"], indexed=p.get("indexed", False)
                )
    create = create_class(owner_address=bytes.fromhex(value["owner_address"]), new_contract=smart)
    contract = tron_pb2.Transaction.Contract(
        type=tron_pb2.Transaction.Contract.ContractType.CreateSmartContract,
        parameter=any_pb2.Any(type_url=TYPE_URL + "CreateSmartContract",
                              value=create.SerializeToString()),
    )  # fmt: skip
    encoded = tron_pb2.Transaction.raw(
        ref_block_bytes=bytes.fromhex(raw["ref_block_bytes"]),
        ref_block_hash=bytes.fromhex(raw["ref_block_hash"]), expiration=raw["expiration"],
        timestamp=raw["timestamp"], fee_limit=raw["fee_limit"], contract=[contract],
    )  # fmt: skip
    return hashlib.sha256(encoded.SerializeToString()).hexdigest()


@pytest.mark.parametrize("name", ["AtlasChannels", "AtlasTestToken", "ReentrantToken"])
def test_deployment_txid_is_java_trons(name: str) -> None:
    artifact = load(name)
    client = Tron(HTTPProvider("http://127.0.0.1:9"))  # builds offline; never connects
    owner = "TJRabPrwbZy45sbavfcjinPJC18kjpRTv8"
    contract = Contract(name=name, bytecode=artifact.bytecode.hex(), abi=artifact.abi)
    builder = client.trx.deploy_contract(owner, contract).fee_limit(2_000_000_000)
    raw = dict(builder._raw_data, ref_block_bytes="1a2b", ref_block_hash="0102030405060708")
    tx = read_transaction({"raw_data": raw}, False)
    assert tx.txid.hex() == java_tron_txid(raw)
    assert tx.owner == TronAddress.parse(owner).raw


@pytest.mark.parametrize(("body", "reason"), [
    ({}, "no raw_data"),
    ({"raw_data": {"contract": []}}, "exactly one contract"),
    ({"raw_data": {"contract": [{"type": "TransferContract", "parameter": {"value": {
        "owner_address": "41" + "00" * 20, "amount": "12"}}}]}}, "amount must be an int64"),
    ({"raw_data": {"contract": [{"type": "TransferContract", "parameter": {"value": {
        "owner_address": "zz"}}}]}}, "owner_address must be hex"),
    ({"raw_data": {"contract": [{"type": "TransferContract", "parameter": {"value": {
        "owner_address": "41" + "00" * 20}}}], "expiration": 2**63}}, "expiration must be"),
])  # fmt: skip
def test_malformed_transactions_are_named(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(BadMessage, match=reason):
        read_transaction(body, False)


def test_other_contract_kinds_are_not_executed() -> None:
    body = {
        "raw_data": {"contract": [{"type": "TransferAssetContract", "parameter": {"value": {}}}]}
    }
    with pytest.raises(Unsupported, match="TransferAssetContract"):
        read_transaction(body, False)


def test_funding_flags_read_exact_amounts() -> None:
    grant = _funding("TJRabPrwbZy45sbavfcjinPJC18kjpRTv8=12.5,0.000000000000000001")
    assert (grant.sun, grant.btt) == (12_500_000, 1)
    assert _funding(grant.text()) == grant
    for bad in (
        "TJRabPrwbZy45sbavfcjinPJC18kjpRTv8",
        "T123=1,1",
        "TJRabPrwbZy45sbavfcjinPJC18kjpRTv8=-1,0",
    ):
        with pytest.raises(ValueError):
            _funding(bad)
    with pytest.raises(ValueError, match="at most 6 decimals"):
        whole_units("0.0000001", 10**6, "TRX")


OWNERS = ["41" + "00" * 20, "TJRabPrwbZy45sbavfcjinPJC18kjpRTv8"]
leaves = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text(max_size=8) | st.sampled_from(["41" + "00" * 20, "ab", "function", "View", "zz"])
    | st.sampled_from(["TJRabPrwbZy45sbavfcjinPJC18kjpRTv8", "T" + "1" * 33])
)  # fmt: skip
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=5)
    ),
    max_leaves=30,
)
transactions = st.fixed_dictionaries({
    "raw_data": st.fixed_dictionaries({"contract": st.lists(st.fixed_dictionaries({
        "type": st.sampled_from(["TransferContract", "TriggerSmartContract",
                                 "CreateSmartContract", "VoteWitnessContract"]),
        "parameter": st.fixed_dictionaries({"value": st.fixed_dictionaries(
            {"owner_address": st.sampled_from(OWNERS)},
            optional={n: leaves | json_values for n in FIELD_NAMES if n != "owner_address"})}),
    }, optional={"Permission_id": json_values}), min_size=1, max_size=2)},
        optional={n: json_values for n in ("expiration", "ref_block_bytes", "fee_limit")}),
}, optional={"signature": json_values})  # fmt: skip


@given(body=json_values | transactions, visible=st.booleans())
def test_any_json_is_read_or_refused_as_bad_message(body: object, visible: bool) -> None:
    """What clients send is untrusted: it is a transaction or a BadMessage, nothing else."""
    with contextlib.suppress(BadMessage):
        read_transaction(body, visible)
