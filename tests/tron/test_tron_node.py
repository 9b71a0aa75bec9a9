"""``atlas ledger tron-node`` driven by unmodified tronpy: transfers, deployments, TRC-20
calls, reverts, energy, constant calls and the faucet, against one node process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from eth_abi.abi import decode as abi_decode
from tronpy import AsyncTron, Tron
from tronpy.contract import Contract
from tronpy.exceptions import AddressNotFound, TransactionNotFound, TvmError, ValidationError
from tronpy.providers import HTTPProvider
from tronpy.providers.async_http import AsyncHTTPProvider

from requester.protocol import BTT as BTT_ASSET
from requester.protocol import TronAddress, asset_id
from requester.protocol.payment_domain import keccak256
from requester.tron.artifacts import load
from tests.processes import Running, start_tron_node
from tests.tron.node_client import (
    BTT,
    FEE_LIMIT,
    SUN,
    address,
    control,
    deploy,
    funded,
    key,
    token_balance,
)

TOKEN = load("AtlasTestToken")
VOUCHER_CHECK = Path(__file__).resolve().parent.parent / "contracts" / "VoucherCheck.json"


@pytest.fixture(scope="module")
def node() -> Iterator[Running]:
    running = start_tron_node("--fund", f"{address(key('alice'))}=1000,100")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tron(node: Running) -> Tron:
    return Tron(HTTPProvider(node.url))


@pytest.fixture(scope="module")
def token(tron: Tron, node: Running) -> Contract:
    return tron.get_contract(str(node.ready["token"]))


@pytest.fixture
async def atron(node: Running) -> AsyncIterator[AsyncTron]:
    async with AsyncTron(AsyncHTTPProvider(node.url)) as client:
        yield client


def test_ready_line_names_what_was_deployed(node: Running, tron: Tron, token: Contract) -> None:
    ready = node.ready
    assert {"listening", "contract", "token", "chain_id", "variants", "channels_for"} <= set(ready)
    variants, channels_for = dict(ready["variants"]), dict(ready["channels_for"])  # type: ignore[call-overload]
    names = {"NoReturnToken", "FalseReturnToken", "FeeOnTransferToken", "ReentrantToken"}
    assert set(variants) == set(channels_for) == names
    channels = tron.get_contract(str(ready["contract"]))
    assert channels.functions.token() == ready["token"]
    assert channels.functions.chainId() == 0x2B6653DC == int(str(ready["chain_id"]), 16)
    assert channels.functions.assetId() == asset_id(BTT_ASSET)
    assert channels.functions.closeGrace() == 6 * 3600
    assert (token.functions.symbol(), token.functions.decimals()) == ("BTT", 18)
    alice = address(key("alice"))  # --fund ALICE=1000,100
    assert tron.get_account_balance(alice) == 1000
    assert token_balance(token, alice) == 100 * BTT


def test_trx_transfer_moves_balance(node: Running, tron: Tron) -> None:
    sender, to = funded(node, "trx-sender", trx=10), address(key("trx-receiver"))
    with pytest.raises(AddressNotFound):  # getaccount answers {} for an unknown account
        tron.get_account(to)
    sent = tron.trx.transfer(address(sender), to, 1_500_000).build().sign(sender).broadcast()
    receipt = sent.wait()
    assert "result" not in receipt and receipt["contractResult"] == [""]
    assert tron.get_account_balance(to) == Decimal("1.5")
    assert tron.get_account_balance(address(sender)) == Decimal("8.5")  # no bandwidth fee
    assert tron.get_account(to)["create_time"] == receipt["blockTimeStamp"]


def test_deploy_contract_at_trons_address(node: Running, tron: Tron) -> None:
    owner = funded(node, "deployer", trx=2000)
    artifact = json.loads(VOUCHER_CHECK.read_text(encoding="utf-8"))
    contract = Contract(name="VoucherCheck", bytecode=artifact["bytecode"][2:], abi=artifact["abi"])
    before = tron.get_account_balance(address(owner))
    receipt = deploy(tron, owner, contract)
    expected = (
        b"\x41"
        + keccak256(bytes.fromhex(receipt["id"]) + TronAddress.parse(address(owner)).raw)[12:]
    )
    assert receipt["contract_address"] == str(TronAddress(expected))
    assert receipt["receipt"]["result"] == "SUCCESS"
    assert receipt["fee"] == receipt["receipt"]["energy_usage_total"] * 100
    assert tron.get_account_balance(address(owner)) == before - Decimal(receipt["fee"]) / SUN
    deployed = tron.get_contract(receipt["contract_address"])
    assert {f["name"] for f in deployed.abi if f["type"] == "Function"} == {
        f["name"] for f in artifact["abi"] if f["type"] == "function"}  # fmt: skip
    separator = deployed.functions.domainSeparator(0x2B6653DC, receipt["contract_address"])
    assert len(separator) == 32


async def test_trc20_transfer_succeeds_with_logs(node: Running, atron: AsyncTron) -> None:
    payer, payee = funded(node, "trc20-payer", trx=50, btt=5), address(key("trc20-payee"))
    token = await atron.get_contract(str(node.ready["token"]))
    call = await token.functions.transfer(payee, 2 * BTT)
    signed = (await call.with_owner(address(payer)).fee_limit(FEE_LIMIT).build()).sign(payer)
    sent = await signed.broadcast()
    assert await sent.result() is True
    receipt = await sent.wait()
    events = list(token.events.Transfer.process_receipt(receipt))
    assert [e["args"] for e in events] == [{"from": address(payer), "to": payee, "value": 2 * BTT}]
    assert (
        receipt["fee"]
        == receipt["receipt"]["energy_fee"]
        == receipt["receipt"]["energy_usage_total"] * 100
    )
    assert await token.functions.balanceOf(payee) == 2 * BTT
    assert await atron.get_account_balance(address(payer)) == 50 - Decimal(receipt["fee"]) / SUN


def test_revert_is_a_failed_receipt_with_its_revert_data(
    node: Running, tron: Tron, token: Contract
) -> None:
    payer = funded(node, "reverter", trx=50, btt=1)
    sent = (token.functions.transfer(address(key("nobody")), 3 * BTT).with_owner(address(payer))
            .fee_limit(FEE_LIMIT).build().sign(payer).broadcast())  # fmt: skip
    with pytest.raises(TvmError, match="REVERT opcode executed"):
        sent.result()
    receipt = sent.wait()
    assert (receipt["result"], receipt["receipt"]["result"]) == ("FAILED", "REVERT")
    data = bytes.fromhex(receipt["contractResult"][0])
    assert TOKEN.error_of(data) == "InsufficientBalance(uint256,uint256)"
    assert abi_decode(["uint256", "uint256"], data[4:]) == (BTT, 3 * BTT)
    assert "log" not in receipt and 0 < receipt["fee"] < FEE_LIMIT
    assert token_balance(token, address(payer)) == BTT
    assert tron.get_account_balance(address(payer)) == 50 - Decimal(receipt["fee"]) / SUN


def test_out_of_energy_changes_nothing_but_the_fee(
    node: Running, tron: Tron, token: Contract
) -> None:
    payer, payee = funded(node, "starved", trx=50, btt=2), address(key("starved-payee"))
    low = 1_000_000  # 1 TRX buys 10000 energy: a transfer needs ~30000
    sent = (token.functions.transfer(payee, BTT).with_owner(address(payer)).fee_limit(low)
            .build().sign(payer).broadcast())  # fmt: skip
    receipt = sent.wait()
    assert (receipt["result"], receipt["receipt"]["result"]) == ("FAILED", "OUT_OF_ENERGY")
    assert receipt["fee"] == low and receipt["receipt"]["energy_usage_total"] == low // 100
    assert token_balance(token, address(payer)) == 2 * BTT and token_balance(token, payee) == 0
    assert tron.get_account_balance(address(payer)) == 49


def test_constant_calls_change_nothing(node: Running, tron: Tron, token: Contract) -> None:
    owner, payee = funded(node, "constant", trx=50, btt=4), address(key("constant-payee"))
    words = "00" * 12 + TronAddress.parse(payee).evm.hex() + (BTT).to_bytes(32, "big").hex()
    answer = tron.trigger_constant_contract(
        address(owner), token.address, "transfer(address,uint256)", words
    )
    assert answer["result"] == {"result": True} and answer["constant_result"] == ["00" * 31 + "01"]
    assert token_balance(token, payee) == 0 and token_balance(token, address(owner)) == 4 * BTT
    estimate = tron.get_estimated_energy(
        address(owner), token.address, "transfer(address,uint256)", words
    )
    assert estimate >= answer["energy_used"] > 0
    sent = (token.functions.transfer(payee, BTT).with_owner(address(owner)).fee_limit(FEE_LIMIT)
            .build().sign(owner).broadcast())  # fmt: skip
    assert sent.wait()["receipt"]["energy_usage_total"] == answer["energy_used"]
    with pytest.raises(ValidationError, match="Smart contract is not exist"):
        tron.trigger_constant_contract(address(owner), payee, "transfer(address,uint256)", words)


def test_faucet_funds_keys_made_after_start(node: Running, tron: Tron, token: Contract) -> None:
    who = address(key("late"))
    answer = control(node, "fund", {"address": who, "trx": "2.5", "btt": 7})
    assert answer.status_code == 200 and answer.json()["balance"] == 2_500_000
    assert tron.get_account_balance(who) == Decimal("2.5") and token_balance(token, who) == 7 * BTT
    variant = control(node, "fund", {"address": who, "btt": 1, "token": "FeeOnTransferToken"})
    assert variant.status_code == 200
    fee_token = tron.get_contract(str(node.ready["variants"]["FeeOnTransferToken"]))  # type: ignore[index]
    assert token_balance(fee_token, who) == BTT
    for bad in ({"address": "T123", "trx": 1}, {"address": who, "trx": -1},
                {"address": who, "btt": 1, "token": "Nope"}, {"trx": 1}):  # fmt: skip
        refused = control(node, "fund", bad)
        assert refused.status_code == 400
        assert refused.headers["Content-Type"].startswith("application/problem+json")
    itself = control(node, "fund", {"address": node.ready["deployer"], "trx": 1})
    assert itself.status_code == 409 and "Cannot transfer TRX to yourself" in itself.text


def test_unknown_ids_answer_as_java_tron(node: Running, tron: Tron) -> None:
    with pytest.raises(TransactionNotFound):
        tron.get_transaction_info("ab" * 32)
    assert (
        tron.provider.make_request(
            "wallet/getcontract", {"value": address(key("x")), "visible": True}
        )
        == {}
    )
    broken = tron.provider.make_request("wallet/gettransactioninfobyid", {"value": "zz"})
    assert set(broken) == {"Error"}
    assert tron.provider.make_request("wallet/getblockbynum", {"num": 10**9}) == {}
    head = tron.get_latest_block()
    assert tron.get_block(head["block_header"]["raw_data"]["number"])["blockID"] == head["blockID"]
