"""java-tron's full-node HTTP endpoints that tronpy calls, answered from the node's chain.

``/wallet/NAME`` (and ``/walletsolidity/NAME`` for the reads: every block is solid at
once) answer GET or POST as java-tron does, for tronpy and any other client of that
API. Like java-tron, they answer HTTP 200 even to input they cannot read, with
``{"Error": "..."}``: tronpy turns that into its ``ApiError``, where a 4xx would be an
HTTP error it does not expect. Unknown ids and accounts are ``{}``, as in java-tron.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from cdn_edge.ledger.tron_node import views
from cdn_edge.ledger.tron_node.chain import Refused
from cdn_edge.ledger.tron_node.execution import Invalid
from cdn_edge.ledger.tron_node.machine import Outcome
from cdn_edge.ledger.tron_node.node import Node
from cdn_edge.ledger.tron_node.protobuf import BadMessage, Msg, parse
from cdn_edge.ledger.tron_node.transactions import read_transaction
from requester.protocol import MalformedMessage, TronAddress
from requester.protocol.payment_domain import keccak256

MAX_BODY = 4 * 1024 * 1024
NODE = web.AppKey("node", Node)
Answer = Callable[[Node, Msg, bool], Msg]


def wallet_routes() -> dict[str, Answer]:
    """Each endpoint's name and what answers it (from the node, the request, ``visible``)."""
    return {
        "getnodeinfo": lambda n, _, __: views.node_info(n.chain),
        "getchainparameters": lambda n, _, __: views.chain_parameters(n.chain.fees),
        "getnowblock": lambda n, _, v: views.block(n.chain, n.chain.blocks.catch_up(), v),
        "getblockbynum": _block_by_number,
        "getblockbyid": _block_by_id,
        "getaccount": lambda n, p, v: views.account(n.chain, _address(p, "address"), v),
        "getcontract": _contract(views.smart_contract),
        "getcontractinfo": _contract(views.contract_info),
        "getsignweight": lambda n, p, v: views.sign_weight(n.chain, read_transaction(p, v), v),
        "broadcasttransaction": _broadcast,
        "gettransactioninfobyid": _transaction_info,
        "gettransactionbyid": _transaction,
        "triggerconstantcontract": _constant,
        "estimateenergy": _estimate,
    }


def wallet_handler(answer: Answer) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler for ``answer``: query and JSON body as its parameters."""

    async def handle(request: web.Request) -> web.Response:
        params: dict[str, Any] = dict(request.query)
        raw = await request.read() if request.method == "POST" else b""
        try:
            if raw.strip():
                body = json.loads(raw)
                if not isinstance(body, dict):
                    raise BadMessage("the body must be a JSON object")
                params.update(body)
            visible = str(params.get("visible", "false")).lower() == "true"
            shown = answer(request.app[NODE], params, visible)
        except (ValueError, RecursionError, BadMessage, MalformedMessage) as exc:
            reason = exc.message if isinstance(exc, MalformedMessage) else str(exc)
            shown = {"Error": f"{type(exc).__name__} : {reason[:300]}"}
        return web.json_response(shown)

    return handle


def _address(params: Msg, key: str) -> bytes:
    value = params.get(key)
    if not isinstance(value, str):
        raise BadMessage(f"{key} must be an address")
    try:
        return TronAddress.parse(value).raw
    except MalformedMessage as exc:
        raise BadMessage(f"{key}: {exc.message}") from None


def _hex(params: Msg, key: str, size: int) -> bytes:
    value = params.get("value")
    try:
        found = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        found = b""
    if len(found) != size:
        raise BadMessage(f"{key} must be {size} bytes of hex")
    return found


def _block_by_number(node: Node, params: Msg, visible: bool) -> Msg:
    number = params.get("num")
    if isinstance(number, str) and number.isdigit():
        number = int(number)
    found = node.chain.blocks.by_number(number) if isinstance(number, int) else None
    return views.block(node.chain, found, visible) if found is not None else {}


def _block_by_id(node: Node, params: Msg, visible: bool) -> Msg:
    found = node.chain.blocks.by_id(_hex(params, "value", 32))
    return views.block(node.chain, found, visible) if found is not None else {}


def _contract(show: Callable[[Any, bool], Msg]) -> Answer:
    def answer(node: Node, params: Msg, visible: bool) -> Msg:
        found = node.chain.contracts.get(_address(params, "value"))
        return show(found, visible) if found is not None else {}

    return answer


def _broadcast(node: Node, params: Msg, visible: bool) -> Msg:
    tx = read_transaction(params, visible)
    try:
        node.chain.submit(tx)
    except Refused as exc:
        node.count(exc.code)
        return {"result": False, "code": exc.code, "txid": tx.txid.hex(),
                "message": views.text(exc.message, visible)}  # fmt: skip
    node.count("SUCCESS")
    return {"result": True, "txid": tx.txid.hex()}


def _transaction_info(node: Node, params: Msg, visible: bool) -> Msg:
    receipt = node.chain.receipt(_hex(params, "value", 32))
    return views.transaction_info(receipt, visible) if receipt is not None else {}


def _transaction(node: Node, params: Msg, visible: bool) -> Msg:
    found = node.chain.transactions.get(_hex(params, "value", 32))
    return views.transaction(*found, visible) if found is not None else {}


def _call_of(params: Msg, visible: bool) -> tuple[Msg, bytes]:
    """A constant call's ``TriggerSmartContract`` and its calldata: ``function_selector``
    and ``parameter``, or ``data``, as java-tron reads them."""
    call = parse("TriggerSmartContract", params, visible)
    selector = params.get("function_selector")
    if isinstance(selector, str) and selector:
        parameter = params.get("parameter") or ""
        try:
            return call, keccak256(selector.encode())[:4] + bytes.fromhex(str(parameter))
        except ValueError:
            raise BadMessage("parameter must be hex") from None
    return call, bytes(call.get("data", b""))


def _dry_run(run: Callable[[bytes, bytes, bytes, int], Outcome], params: Msg,
             visible: bool) -> Outcome | Msg:  # fmt: skip
    """Run the call ``params`` name (a constant call, an estimate); java-tron's answer when
    the contract's validation refuses it."""
    call, data = _call_of(params, visible)
    try:
        return run(call.get("owner_address", bytes(21)), call.get("contract_address", b""),
                   data, call.get("call_value", 0))  # fmt: skip
    except Invalid as exc:
        return {"result": {"code": "CONTRACT_VALIDATE_ERROR",
                           "message": views.text(str(exc), visible)}}  # fmt: skip


def _constant(node: Node, params: Msg, visible: bool) -> Msg:
    outcome = _dry_run(node.chain.constant_call, params, visible)
    if isinstance(outcome, dict):
        return outcome
    if outcome.result not in ("SUCCESS", "REVERT"):
        return {"result": {"code": "OTHER_ERROR", "message": views.text(outcome.message, visible)}}
    result: Msg = {"result": True}
    if not outcome.ok:
        result["message"] = views.text(outcome.message, visible)
    answer: Msg = {"result": result, "energy_used": outcome.energy,
                   "constant_result": [outcome.output.hex()]}  # fmt: skip
    if outcome.logs:
        answer["logs"] = [
            views.log_entry(e.address, e.topics, e.data, visible) for e in outcome.logs
        ]
    answer["transaction"] = {"ret": [{} if outcome.ok else {"ret": "FAILED"}], "visible": visible}
    return answer


def _estimate(node: Node, params: Msg, visible: bool) -> Msg:
    outcome = _dry_run(node.chain.estimate_energy, params, visible)
    if isinstance(outcome, dict):
        return outcome
    if not outcome.ok:
        return {"result": {"code": "CONTRACT_EXE_ERROR",
                           "message": views.text(outcome.message, visible)}}  # fmt: skip
    return {"result": {"result": True}, "energy_required": outcome.energy}


def add_wallet_routes(app: web.Application) -> None:
    """Every endpoint under ``/wallet/``, and the reads under ``/walletsolidity/`` too."""
    for name, answer in wallet_routes().items():
        handle = wallet_handler(answer)
        prefixes = ["wallet"]
        if name in (
            "getnowblock",
            "getblockbynum",
            "getblockbyid",
            "getaccount",
            "gettransactioninfobyid",
            "gettransactionbyid",
            "triggerconstantcontract",
        ):
            prefixes.append("walletsolidity")  # fmt: skip
        for prefix in prefixes:
            app.router.add_route("GET", f"/{prefix}/{name}", handle)
            app.router.add_route("POST", f"/{prefix}/{name}", handle)
