"""The TRON backend's parts that need no node: which ledger a URL names, the channel
contract's answers as the embedded ledger's views and refusals, and the journal's states."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from requester.ledger_api import open_ledger, parse_ledger_url
from requester.ledger_client import LedgerClient, LedgerError
from requester.protocol import BTT, PayerKey
from requester.settings import Settings
from requester.settings_spec import InvalidSetting, resolve
from requester.tron.artifacts import load
from requester.tron.channel_contract import (
    ChannelContract,
    encode,
    receipt_refusal,
    selector,
    signature_of,
)
from requester.tron.ledger import TronLedger
from requester.tron.tx_journal import TxJournal

PAYER = PayerKey(bytes([0x11]) * 32).address
PAYEE = PayerKey(bytes([0x22]) * 32).address
CONTRACT = ChannelContract(load("AtlasChannels").abi)
CID = bytes(range(32))


@pytest.mark.parametrize(
    ("url", "tron", "endpoint", "contract"),
    [
        ("http://127.0.0.1:9000", False, "http://127.0.0.1:9000", None),
        ("https://ledger.example/", False, "https://ledger.example", None),
        ("tron+http://127.0.0.1:9090", True, "http://127.0.0.1:9090", None),
        ("tron+https://node.example/?contract=TXyz", True, "https://node.example", "TXyz"),
        ("tron:nile?contract=TAbc", True, "https://nile.trongrid.io", "TAbc"),
        ("tron:mainnet", True, "https://api.trongrid.io", None),
    ],
)
def test_a_ledger_url_names_its_backend(
    url: str, tron: bool, endpoint: str, contract: str | None
) -> None:
    target = parse_ledger_url(url)
    assert (target.tron, target.endpoint, target.contract) == (tron, endpoint, contract)


@pytest.mark.parametrize("url", ["ftp://x", "tron:shasta", "tron+http://", "127.0.0.1:80", ""])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"ledger URL|TRON"):
        parse_ledger_url(url)


async def test_open_ledger_picks_the_implementation_without_contacting_it() -> None:
    async with aiohttp.ClientSession() as session:
        embedded = open_ledger("http://127.0.0.1:1", session)
        assert isinstance(embedded, LedgerClient)
        tron = open_ledger("tron:mainnet", session, contract=str(PAYEE))
        assert isinstance(tron, TronLedger)
        assert tron.url == "tron:mainnet"
        await tron.close()
        with pytest.raises(LedgerError) as refused:
            open_ledger("tron:nile", session)  # a public network needs its contract named
        assert (refused.value.status, refused.value.code) == (400, "no_contract")


def _channels_answer(status: int, deposit: int = 3 * BTT.one, redeemed: int = 0) -> bytes:
    types = ["address", "uint64", "address", "uint64", "uint128", "uint128", "uint8"]
    return encode(types, [PAYER, 1_900_000_000, PAYEE, 1_800_000_000, deposit, redeemed, status])


def test_a_channel_reads_as_the_embedded_ledgers_view() -> None:
    view = CONTRACT.channel_view(CID, _channels_answer(2, redeemed=BTT.one // 4), BTT)
    assert view == {
        "channel_id": CID.hex(), "payer": str(PAYER), "payee": str(PAYEE),
        "asset": BTT.uri, "deposit": str(3 * BTT.one), "redeemed": str(BTT.one // 4),
        "expires_at": 1_900_000_000, "opened_at": 1_800_000_000, "status": "reclaimed",
    }  # fmt: skip
    empty = encode(["address", "uint64", "address", "uint64", "uint128", "uint128", "uint8"],
                   ["0x" + "00" * 20, 0, "0x" + "00" * 20, 0, 0, 0, 0])  # fmt: skip
    assert CONTRACT.channel_view(CID, empty, BTT) is None


EMBEDDED_CODES = {
    # Each custom error and what the embedded ledger answers for the same refusal
    # (docs/ledger.md, Refusals).
    "ChannelExists": (409, "channel_exists"), "NotFound": (404, "not_found"),
    "ChannelExpired": (409, "channel_expired"), "DepositExceeded": (409, "deposit_exceeded"),
    "AlreadyRedeemed": (409, "already_redeemed"), "NotExpired": (409, "not_expired"),
    "AlreadyReclaimed": (409, "already_reclaimed"),
    "InvalidSignature": (400, "invalid_signature"), "HighOrZeroS": (400, "invalid_signature"),
    "BadV": (400, "invalid_signature"), "BadSignatureLength": (400, "invalid_signature"),
    "WrongBinding": (400, "wrong_binding"), "BadRequest": (400, "bad_request"),
    "MalformedMessage": (400, "malformed_message"),
    "InsufficientFunds": (402, "insufficient_funds"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EMBEDDED_CODES))
def test_each_contract_error_is_the_embedded_ledgers_refusal(name: str) -> None:
    entry = next(e for e in CONTRACT.abi if e.get("type") == "error" and e["name"] == name)
    types = [i["type"] for i in entry["inputs"]]
    args = {"address": PAYER, "bytes32": CID, "string": "zero deposit"}
    data = selector(signature_of(entry)) + encode(types, [args.get(t, 7) for t in types])
    refused = CONTRACT.refusal(data, "a call")
    assert (refused.status, refused.code) == EMBEDDED_CODES[name]
    assert refused.refused and name in refused.detail


def test_a_failed_receipt_says_what_failed() -> None:
    out = {"result": "FAILED", "fee": 1_000_000, "receipt": {"result": "OUT_OF_ENERGY"}}
    refused = receipt_refusal(CONTRACT, out, "open", 1_000_000)
    assert (refused.status, refused.code) == (402, "out_of_energy")
    assert "raise tron_fee_limit" in refused.detail
    text = selector("Error(string)") + encode(["string"], ["no"])
    reverted = {"result": "FAILED", "receipt": {"result": "REVERT"},
                "contractResult": [text.hex()]}  # fmt: skip
    assert receipt_refusal(CONTRACT, reverted, "open", 1).code == "contract_refused"


def test_the_journal_fixes_an_intents_parameters_and_keeps_its_transaction(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tron-txs.sqlite3"
    journal = TxJournal(path)
    first = journal.begin("op:aa", "topup", str(PAYER), CID, {"target": "5"})
    again = journal.begin("op:aa", "topup", str(PAYER), CID, {"target": "9"})
    assert first == again and again.params == {"target": "5"} and again.state == "new"
    assert journal.signed("op:aa", {"txID": "t1"}, "t1", 1000)
    assert not journal.signed("op:aa", {"txID": "t2"}, "t2", 2000)  # one in flight already
    journal.close()
    reopened = TxJournal(path)  # what a restart after kill -9 finds
    entry = reopened.get("op:aa")
    assert entry is not None
    assert (entry.state, entry.txid, entry.tx) == ("signed", "t1", {"txID": "t1"})
    assert [e.intent for e in reopened.unfinished("topup", CID)] == ["op:aa"]
    reopened.expired("op:aa")  # expired unseen: a new transaction may carry it
    entry = reopened.get("op:aa")
    assert entry is not None
    assert (entry.state, entry.txid, entry.superseded) == ("new", None, ["t1"])
    assert reopened.signed("op:aa", {"txID": "t3"}, "t3", 3000)
    reopened.confirmed("op:aa", {"id": "t3"})
    assert reopened.unfinished("topup", CID) == []
    reopened.close()


def test_settings_read_the_ledger_forms_and_the_fee_limit_in_trx(tmp_path: Path) -> None:
    env = {"ATLAS_HOME": str(tmp_path), "ATLAS_LEDGER": "tron:nile",
           "ATLAS_LEDGER_CONTRACT": str(PAYEE), "ATLAS_TRON_FEE_LIMIT": "12.5"}  # fmt: skip
    settings = resolve(Settings, environ=env).settings
    assert (settings.ledger, settings.ledger_contract) == ("tron:nile", str(PAYEE))
    assert settings.tron_fee_limit == 12_500_000
    for name, bad in (("ATLAS_LEDGER", "ftp://x"), ("ATLAS_TRON_FEE_LIMIT", "lots")):
        with pytest.raises(InvalidSetting, match=name):
            resolve(Settings, environ={**env, name: bad})
