"""``atlas ledger deploy`` against the offline TRON node (a real process): the address it
prints is a contract whose views are what was asked, read back through unmodified tronpy;
a token without code, a deployer without TRX and an unreachable node are refused with one
line that says why, before any TRX is spent."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_abi.abi import decode
from tronpy import Tron
from tronpy.providers import HTTPProvider

from requester.protocol import BTT, PayerKey, PaymentDomain, TronAddress
from requester.protocol.voucher import asset_id
from tests.processes import ATLAS, Running, start

DEPLOYER = PayerKey(bytes([0x66]) * 32)
BROKE = PayerKey(bytes([0x67]) * 32)


@pytest.fixture(scope="module")
def node() -> Iterator[Running]:
    running = start(["ledger", "tron-node", "--port", "0", "--fund", f"{DEPLOYER.address}=3000,0"])
    yield running
    running.stop()


def key_file(tmp_path: Path, key: PayerKey) -> Path:
    path = tmp_path / f"{key.address}.key"
    path.write_text(key.secret.hex() + "\n")
    path.chmod(0o600)
    return path


def deploy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ATLAS, "ledger", "deploy", *args], capture_output=True, text=True,
                          timeout=60, check=False, env=env)  # fmt: skip


def trx(client: Tron, who: TronAddress) -> int:
    account = client.provider.make_request("wallet/getaccount", {"address": who.base58()})
    return int(account.get("balance", 0))


def view(client: Tron, contract: str, signature: str, kind: str) -> object:
    raw = client.trigger_const_smart_contract_function(
        str(DEPLOYER.address), contract, signature, ""
    )
    return decode([kind], bytes.fromhex(raw))[0]


def test_deploy_prints_an_address_whose_views_are_what_was_asked(
    node: Running, tmp_path: Path
) -> None:
    token = str(node.ready["token"])
    done = deploy("--node", node.url, "--token", token, "--close-grace", "90m",
                  "--key-file", str(key_file(tmp_path, DEPLOYER)))  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("T")
    contract = TronAddress.parse(lines[0])
    client = Tron(HTTPProvider(node.url))
    assert TronAddress.parse(str(view(client, lines[0], "token()", "address"))).base58() == token
    assert view(client, lines[0], "assetId()", "bytes32") == asset_id(BTT)
    assert view(client, lines[0], "chainId()", "uint256") == 0x2B6653DC
    assert view(client, lines[0], "closeGrace()", "uint64") == 90 * 60
    separator = PaymentDomain(0x2B6653DC, contract.evm).separator
    assert view(client, lines[0], "domainSeparator()", "bytes32") == separator
    # every flag has its variable; --json says what was checked and what it cost
    env = {"ATLAS_NODE": f"tron+{node.url}", "ATLAS_TOKEN": token, "ATLAS_CLOSE_GRACE": "1d",
           "ATLAS_KEY_FILE": str(key_file(tmp_path, DEPLOYER)), "ATLAS_CHAIN_ID": "0x2b6653dc",
           "ATLAS_DEPLOY_FEE_LIMIT": "1500", "PATH": "/usr/bin:/bin"}  # fmt: skip
    again = deploy("--json", env=env)
    assert again.returncode == 0, again.stderr
    shown = json.loads(again.stdout)
    assert shown["contract"] != lines[0] and shown["token"] == token
    assert shown["close_grace"] == 86400 and shown["chain_id"] == 0x2B6653DC
    assert shown["asset"] == BTT.uri and 0 < shown["fee_sun"] <= 1500 * 10**6
    assert shown["energy_used"] > 0


def test_deploy_refuses_a_token_without_code_a_broke_deployer_and_a_dead_node(
    node: Running, tmp_path: Path
) -> None:
    token = str(node.ready["token"])
    client = Tron(HTTPProvider(node.url))
    before = trx(client, DEPLOYER.address)
    no_code = deploy("--node", node.url, "--token", str(BROKE.address),
                     "--key-file", str(key_file(tmp_path, DEPLOYER)))  # fmt: skip
    assert no_code.returncode == 1
    assert f"the token {BROKE.address} has no contract code" in no_code.stderr
    assert trx(client, DEPLOYER.address) == before  # refused before anything was sent
    broke = deploy("--node", node.url, "--token", token, "--key-file",
                   str(key_file(tmp_path, BROKE)))  # fmt: skip
    assert broke.returncode == 1
    assert f"the deployer {BROKE.address} holds no TRX" in broke.stderr
    dead = deploy("--node", "http://127.0.0.1:9", "--token", token,
                  "--key-file", str(key_file(tmp_path, DEPLOYER)))  # fmt: skip
    assert dead.returncode == 1
    assert "cannot reach the TRON node at http://127.0.0.1:9" in dead.stderr
    short = deploy("--node", node.url, "--token", token, "--fee-limit", "1",
                   "--key-file", str(key_file(tmp_path, DEPLOYER)))  # fmt: skip
    assert short.returncode == 1 and "ran out of energy" in short.stderr
    for done in (no_code, broke, dead, short):
        assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
