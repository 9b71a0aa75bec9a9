"""``atlas wallet`` and ``atlas channel`` with ``ledger`` set to a TRON node (the offline
``atlas ledger tron-node``): funded by its faucet, a channel opened and topped up on the
contract, ``atlas channel close`` asking the contract to close it (``requestClose``: the
expiry comes within the close grace), then reclaiming it once expired."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from requester.protocol import PayerKey
from tests.processes import Running, start_tron_node
from tests.sdk.conftest import make_home

PAYEE = PayerKey(bytes([0x22]) * 32).address
GRACE = 3600


@pytest.fixture(scope="module")
def node() -> Iterator[Running]:
    running = start_tron_node("--close-grace", f"{GRACE}s")
    yield running
    running.stop()


async def _node_call(node: Running, method: str, path: str, body: object = None) -> object:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{node.url}{path}", json=body) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return await resp.json()


def node_time(node: Running) -> int:
    answer = asyncio.run(_node_call(node, "POST", "/wallet/getnowblock", {}))
    assert isinstance(answer, dict)
    return int(answer["block_header"]["raw_data"]["timestamp"]) // 1000


def test_wallet_and_channel_commands_run_on_tron(node: Running, tmp_path: Path) -> None:
    home = make_home(tmp_path / "home", [], "tron+" + node.url, funds=0)
    funded = home.atlas("wallet", "fund", "5")
    assert funded.returncode == 0 and "balance 5 BTT" in funded.stdout, funded.stderr
    opened = home.atlas("channel", "open", str(PAYEE), "--deposit", "2", "--hours", "3")
    assert opened.returncode == 0, opened.stderr
    channel = json.loads(opened.stdout)
    assert channel["deposit"] == "2 BTT" and channel["expires_at"] > time.time() + 2 * GRACE
    cid = channel["channel_id"]
    topped = home.atlas("channel", "topup", cid, "1")
    assert topped.returncode == 0 and json.loads(topped.stdout)["deposit"] == "3 BTT"
    assert home.atlas("wallet", "balance").stdout.strip() == "2 BTT"

    asked = node_time(node)
    closed = home.atlas("channel", "close", cid)
    assert closed.returncode == 0, closed.stderr
    expires_at = int(closed.stdout.split("after")[-1])
    assert asked + GRACE <= expires_at <= node_time(node) + GRACE < channel["expires_at"]

    asyncio.run(_node_call(node, "POST", "/atlas/time", {"set": expires_at}))
    reclaimed = home.atlas("channel", "close", cid)
    assert reclaimed.returncode == 0 and "reclaimed 3 BTT" in reclaimed.stdout, reclaimed.stderr
    assert home.atlas("wallet", "balance").stdout.strip() == "5 BTT"
    listed = json.loads(home.atlas("channel", "list", "--json").stdout)
    assert [(r["channel_id"], r["status"], r["pending"]) for r in listed] == [
        (cid, "reclaimed", None)
    ]
