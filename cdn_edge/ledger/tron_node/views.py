"""The node's state as java-tron prints it: receipts, blocks, accounts, contracts, node info.

java-tron prints protobuf messages with its ``JsonFormat``: fields that hold their
default (0, false, empty) are left out, enums are named, bytes are hex; with
``"visible": true`` in the request, address fields are base58 (``T...``) and text
fields (``resMessage``, ``Return.message``) are plain text instead of hex. The
receipt's log addresses are the contract's TRON address then, as
``gettransactioninfobyid`` converts them.
"""

from __future__ import annotations

from cdn_edge.ledger.tron_node.blocks import WITNESS, Block, Receipt
from cdn_edge.ledger.tron_node.chain import Chain
from cdn_edge.ledger.tron_node.execution import Contract, Fees
from cdn_edge.ledger.tron_node.protobuf import Msg, to_json
from cdn_edge.ledger.tron_node.transactions import BadSignature, Transaction, signer
from requester.protocol import TronAddress

ACTIVE_OPERATIONS = "7fff1fc0033e0300000000000000000000000000000000000000000000000000"
"""The operations java-tron gives an account's default active permission."""


def address(raw: bytes, visible: bool) -> str:
    return TronAddress(raw).base58() if visible else raw.hex()


def text(value: str, visible: bool) -> str:
    """A protobuf text-as-bytes field: plain when visible, hex otherwise."""
    return value if visible else value.encode().hex()


def transaction_info(receipt: Receipt, visible: bool) -> Msg:
    """``wallet/gettransactioninfobyid``'s answer (``TransactionInfo``)."""
    info: Msg = {"id": receipt.txid.hex()}
    if receipt.fee:
        info["fee"] = receipt.fee
    info.update(blockNumber=receipt.block_number, blockTimeStamp=receipt.block_time,
                contractResult=[receipt.output.hex()])  # fmt: skip
    if receipt.contract:
        info["contract_address"] = address(receipt.contract, visible)
    resources: Msg = {}
    if receipt.fee:
        resources["energy_fee"] = receipt.fee
    if receipt.energy:
        resources["energy_usage_total"] = receipt.energy
    resources["net_usage"] = receipt.net_usage
    if receipt.result:
        resources["result"] = receipt.result
    info["receipt"] = resources
    if receipt.logs:
        info["log"] = [log_entry(entry.address, entry.topics, entry.data, visible)
                       for entry in receipt.logs]  # fmt: skip
    if receipt.failed:
        info["result"] = "FAILED"
        info["resMessage"] = text(receipt.message, visible)
    return info


def log_entry(contract: bytes, topics: tuple[bytes, ...], data: bytes, visible: bool) -> Msg:
    entry: Msg = {"address": address(b"\x41" + contract, True) if visible else contract.hex(),
                  "topics": [t.hex() for t in topics]}  # fmt: skip
    if data:
        entry["data"] = data.hex()
    return entry


def transaction(tx: Transaction, receipt: Receipt, visible: bool) -> Msg:
    """A transaction as blocks and ``wallet/gettransactionbyid`` show it, with its result."""
    shown = tx.to_json(visible)
    shown["ret"] = [{"contractRet": receipt.result or "SUCCESS"}]
    return shown


def block(chain: Chain, found: Block, visible: bool) -> Msg:
    raw: Msg = {}
    if found.number:
        raw["number"] = found.number
    raw.update(txTrieRoot=found.tx_root.hex(), witness_address=address(WITNESS, visible),
               parentHash=found.parent.hex(), version=30)  # fmt: skip
    if found.timestamp:
        raw["timestamp"] = found.timestamp
    header = {"raw_data": raw, "witness_signature": bytes(65).hex()}
    shown: Msg = {"blockID": found.id.hex(), "block_header": header}
    if found.txids:
        shown["transactions"] = [transaction(*chain.transactions[t], visible) for t in found.txids]
    return shown


def account(chain: Chain, raw: bytes, visible: bool) -> Msg:
    """``wallet/getaccount``: ``{}`` for an account that does not exist, as java-tron."""
    if raw not in chain.accounts:
        return {}
    shown: Msg = {"address": address(raw, visible)}
    contract = chain.contracts.get(raw)
    if contract is not None and contract.smart.get("name"):
        shown["account_name"] = text(contract.smart["name"], visible)
    if contract is not None:
        shown["type"] = "Contract"
    if balance := chain.balance(raw):
        shown["balance"] = balance
    shown["create_time"] = chain.accounts[raw]
    key = {"address": address(raw, visible), "weight": 1}
    shown["owner_permission"] = {"permission_name": "owner", "threshold": 1, "keys": [key]}
    shown["active_permission"] = [{"type": "Active", "id": 2, "permission_name": "active",
                                   "threshold": 1, "operations": ACTIVE_OPERATIONS,
                                   "keys": [key]}]  # fmt: skip
    return shown


def smart_contract(contract: Contract, visible: bool) -> Msg:
    """``wallet/getcontract``: the ``SmartContract`` as deployed (its ABI as TRON keeps it)."""
    return to_json("SmartContract", contract.smart, visible)


def contract_info(contract: Contract, visible: bool) -> Msg:
    """``wallet/getcontractinfo``: the contract, and the runtime code it runs."""
    return {"smart_contract": smart_contract(contract, visible),
            "runtimecode": contract.runtime.hex()}  # fmt: skip


def sign_weight(chain: Chain, tx: Transaction, visible: bool) -> Msg:
    """``wallet/getsignweight``: the txID to sign, and who may sign it."""
    answer: Msg = {}
    if tx.owner in chain.accounts:
        key = {"address": address(tx.owner, visible), "weight": 1}
        answer["permission"] = {"permission_name": "owner", "threshold": 1, "keys": [key]}
        signed = [s for s in tx.signatures if _signed_by(tx, s)]
        if signed:
            answer["approved_list"] = [address(tx.owner, visible)]
            answer["current_weight"] = 1
        answer["result"] = {"code": "ENOUGH_PERMISSION" if signed else "NOT_ENOUGH_PERMISSION"}
    else:
        answer["result"] = {"code": "PERMISSION_ERROR", "message": "Account does not exist!"}
    answer["transaction"] = {"result": {"result": True}, "txid": tx.txid.hex(),
                             "transaction": tx.to_json(visible)}  # fmt: skip
    return answer


def _signed_by(tx: Transaction, signature: bytes) -> bool:
    try:
        return signer(tx.txid, signature).raw == tx.owner
    except BadSignature:
        return False


def node_info(chain: Chain) -> Msg:
    """``wallet/getnodeinfo``: tronpy reads the head and solid block ids from it."""
    head = chain.blocks.catch_up()
    position = f"Num:{head.number},ID:{head.id.hex()}"
    return {
        "beginSyncNum": head.number, "block": position, "solidityBlock": position,
        "currentConnectCount": 0, "activeConnectCount": 0, "passiveConnectCount": 0,
        "totalFlow": 0, "peerInfoList": [],
        "configNodeInfo": {"codeVersion": "atlas-tron-node", "supportConstant": True,
                           "allowCreationOfContracts": 1, "discoverEnable": False},
        "machineInfo": {}, "cheatWitnessInfoMap": {},
    }  # fmt: skip


def chain_parameters(fees: Fees) -> Msg:
    """``wallet/getchainparameters``: the parameters this node applies, named as java-tron
    names them (a zero value is left out, as java-tron prints it). No bandwidth or
    account-creation fee is charged, so none is listed."""
    values = {
        "getAllowCreationOfContracts": 1, "getEnergyFee": fees.energy_fee,
        "getAllowTvmTransferTrc10": 0, "getAllowTvmConstantinople": 1,
        "getAllowTvmSolidity059": 1, "getAllowTvmIstanbul": 1, "getAllowTvmLondon": 0,
        "getAllowTvmCompatibleEvm": 1, "getMaxFeeLimit": fees.max_fee_limit,
    }  # fmt: skip
    return {"chainParameter": [{"key": k, "value": v} if v else {"key": k}
                               for k, v in values.items()]}  # fmt: skip
