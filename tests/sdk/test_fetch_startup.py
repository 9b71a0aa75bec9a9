"""What ``atlas fetch`` does before its first byte: the modules it loads and the ledger
round trips of its first payment.

Start-up is most of a short fetch's cost (imports are ~95 % of the CPU of a one-chunk
paid fetch), so these keep the heavy libraries it never uses off its path, and its first
payment to one ledger call for the ledger's terms.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_abi.abi import encode
from hypothesis import given
from hypothesis import strategies as st

from requester.ledger_client import LedgerClient
from requester.protocol import (
    BTT_LOCAL,
    MalformedMessage,
    OpenChannel,
    PayerKey,
    ReclaimChannel,
    TopUpChannel,
)
from requester.protocol.payment_domain import keccak256
from requester.protocol.voucher import asset_id
from tests.processes import Running
from tests.sdk.conftest import Home

SHOW_MODULES = """
import sys
from requester.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(" ".join(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""
NEVER = {
    "tronpy", "requester.tron",  # the TRON ledger: only for a tron:// ledger
    "libtorrent", "requester.dht_bootstrap",  # the DHT: only with --bootstrap
    "rich",  # the progress bar: only with a terminal on both streams
    "cryptography", "OpenSSL", "mitmproxy", "pydantic", "numpy", "matplotlib", "httpx",
    "cdn_edge", "proxy", "launcher", "loadtest",  # other programs' packages
    "importlib.metadata",  # plugin commands and --version
    "Crypto", "cffi", "pycparser",  # keccak is safe-pysha3's: pycryptodome's cffi cost ~45 ms
    "requester.cli.wallet", "requester.cli.status", "requester.cli.config_show",
}  # fmt: skip
"""Modules (and their submodules) a plain paid fetch from edges named on the command line
has no use for."""


def test_a_paid_fetch_loads_none_of_the_heavy_modules_it_does_not_use(
    home: Home, origin: Running, tmp_path: Path
) -> None:
    out = tmp_path / "f.bin"
    result = subprocess.run(
        [sys.executable, "-c", SHOW_MODULES, "fetch", f"{origin.url}/bytes/70000?t=startup",
         "-o", str(out), "--json"],
        env=home.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size == 70000 and int(json.loads(result.stdout)["paid"]) > 0
    loaded = set(result.stderr.splitlines()[-1].split())
    assert {"requester.cli.fetch_run", "aiohttp"} <= loaded
    heavy = {m for m in loaded if m in NEVER or m.split(".")[0] in NEVER}
    assert not heavy


def test_the_wallet_is_unlocked_before_the_sdk_loads(home: Home, origin: Running) -> None:
    """The wallet's argon2id runs while aiohttp loads in its thread: a wrong passphrase is
    refused, as before, without the download's modules ever loading."""
    result = subprocess.run(
        [sys.executable, "-c", SHOW_MODULES, "fetch", f"{origin.url}/bytes/10?t=locked"],
        env={**home.env, "ATLAS_PASSPHRASE": "not-the-passphrase"}, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "wrong passphrase" in result.stderr
    loaded = set(result.stderr.splitlines()[-1].split())
    assert "requester.cli.fetch_run" not in loaded and "requester.client" not in loaded


async def test_the_ledgers_terms_take_one_round_trip(ledger: Running) -> None:
    """The first payment needs the ledger's domain and asset: one ``/v1/info`` for both."""
    asked: list[str] = []

    async def on_request_start(
        _session: aiohttp.ClientSession, _ctx: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        asked.append(params.url.path)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        client = LedgerClient(ledger.url, session)
        domain, asset = await client.domain(), await client.asset()
        assert (await client.domain(), await client.asset()) == (domain, asset)
    assert asked == ["/v1/info"]
    async with aiohttp.ClientSession() as session, session.get(f"{ledger.url}/v1/info") as got:
        info: dict[str, Any] = await got.json()
    assert domain.chain_id == int(info["chain_id"]) and domain.contract.hex() == info["contract"]
    assert asset.uri == info.get("asset", asset.uri)


WORD = st.binary(min_size=32, max_size=32)


@given(deposit=st.integers(0, 2**256 - 1), amount=st.integers(0, 2**256 - 1),
       expires=st.integers(0, 2**64 - 1), nonce=st.integers(0, 2**64 - 1), salt=WORD,
       cid=WORD)  # fmt: skip
def test_ledger_calls_hash_as_eth_abi_encodes_them(
    deposit: int, amount: int, expires: int, nonce: int, salt: bytes, cid: bytes
) -> None:
    """A channel open or top-up is signed without eth_abi (and the pydantic it imports, 0.2-0.5
    s at a first fetch's channel open): its words are the same."""
    payer, payee = PayerKey(bytes([0x11] * 32)).address, PayerKey(bytes([0x22] * 32)).address
    opened = OpenChannel(payer, payee, BTT_LOCAL, deposit, expires, salt, nonce)
    assert opened.struct_hash() == keccak256(encode(
        ["bytes32", "address", "address", "bytes32", "uint256", "uint64", "bytes32", "uint64"],
        [OpenChannel.TYPEHASH, payer.evm, payee.evm, asset_id(BTT_LOCAL), deposit, expires, salt,
         nonce]))  # fmt: skip
    topped = TopUpChannel(payer, cid, amount, expires, nonce)
    assert topped.struct_hash() == keccak256(encode(
        ["bytes32", "address", "bytes32", "uint256", "uint64", "uint64"],
        [TopUpChannel.TYPEHASH, payer.evm, cid, amount, expires, nonce]))  # fmt: skip
    reclaimed = ReclaimChannel(payer, cid, nonce)
    assert reclaimed.struct_hash() == keccak256(encode(
        ["bytes32", "address", "bytes32", "uint64"],
        [ReclaimChannel.TYPEHASH, payer.evm, cid, nonce]))  # fmt: skip


def test_a_ledger_call_past_uint64_is_refused() -> None:
    payer = PayerKey(bytes([0x11] * 32)).address
    with pytest.raises(MalformedMessage):
        ReclaimChannel(payer, bytes(32), 2**64).struct_hash()
