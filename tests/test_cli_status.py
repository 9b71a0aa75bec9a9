"""``atlas status`` (issue 19) on the data dir of a real ``atlas up``, after a real paid
``atlas fetch``: balance, channels, today's spending and edges, in BTT; the exit codes."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from launcher.local_network import pick_free_ports
from requester.protocol import BTT_LOCAL
from tests.cli_terminal import atlas, atlas_env, paying_network
from tests.launcher.atlas_up import Up

SIZE = 3_000_000


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    yield from paying_network(tmp_path_factory.mktemp("net") / "atlas")


def status(up: Up, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(atlas("status", *extra), env=atlas_env(Path(str(up.info["data_dir"]))),
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def payee_of(edge: str) -> str:
    with urllib.request.urlopen(f"{edge}/v1/info", timeout=10) as resp:
        return str(json.load(resp)["payee"])


@pytest.fixture(scope="module")
def fetched(network: Up, origin: Any, tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, Any]:  # fmt: skip
    """The ``--json`` summary of one paid ``atlas fetch`` on the network's data dir."""
    before = json.loads(status(network, "--json").stdout)
    assert before["spent_today_units"] == "0" and before["channels"] == []
    out = tmp_path_factory.mktemp("out") / "file.bin"
    done = subprocess.run(
        atlas("fetch", f"{origin.url}/bytes/{SIZE}?t=status", "-o", str(out), "--json"),
        env=atlas_env(Path(str(network.info["data_dir"]))), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    assert int(summary["paid"]) > 0
    return summary


def test_status_after_a_paid_fetch(network: Up, fetched: dict[str, Any]) -> None:
    shown = status(network, "--json")
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["wallet"] == network.info["wallet"]
    assert view["ledger"] == network.info["ledger"] and view["ledger_error"] is None
    assert view["balance"].endswith(" BTT") and int(view["balance_units"]) > 0
    assert view["spent_today_units"] == fetched["paid"]  # every voucher the fetch signed
    assert view["spent_today"] == f"{fetched['paid_text']}"
    assert view["day"] == time.strftime("%Y-%m-%d", time.gmtime())
    payees = {payee_of(e) for e in network.edges}
    paid = {p for p, s in fetched["providers"].items() if int(s["paid"])}
    assert view["channels"] and {c["payee"] for c in view["channels"]} <= payees
    assert len(view["channels"]) == len(paid)
    for channel in view["channels"]:
        assert channel["deposit"].endswith(" BTT") and channel["spent"].endswith(" BTT")
        assert 0 < int(channel["spent_units"]) <= int(channel["deposit_units"])
        assert channel["expires_at"] > time.time() and channel["status"] == "open"
    assert sum(int(c["spent_units"]) for c in view["channels"]) == int(fetched["paid"])
    assert view["edges_reachable"] == len(network.edges) == len(view["edges"])
    text = status(network)
    assert text.returncode == 0, text.stderr
    assert f"wallet     {view['wallet']}" in text.stdout
    assert "balance    " in text.stdout and " BTT" in text.stdout
    assert "today (" in text.stdout
    for channel in view["channels"]:
        assert channel["payee"] in text.stdout
    assert f"edges      {len(network.edges)} of {len(network.edges)} reachable" in text.stdout
    assert int(fetched["paid"]) < BTT_LOCAL.one  # the default spend limit held


def test_a_dead_ledger_or_edge_is_an_exit_code(network: Up, fetched: dict[str, Any]) -> None:
    dead = f"http://127.0.0.1:{pick_free_ports(1, set())[0]}"
    no_ledger = status(network, "--json", "--ledger", dead)
    assert no_ledger.returncode == 2, no_ledger.stderr
    view = json.loads(no_ledger.stdout)
    assert view["balance"] is None and dead in view["ledger_error"]
    assert view["channels"] and view["spent_today_units"] == fetched["paid"]  # local state
    text = status(network, "--ledger", dead)
    assert text.returncode == 2 and f"balance    unknown: {dead}" in text.stdout
    no_edge = status(network, "--json", "--edge", dead)
    assert no_edge.returncode == 3, no_edge.stderr
    (edge,) = json.loads(no_edge.stdout)["edges"]
    assert (edge["url"], edge["reachable"]) == (dead, False) and edge["detail"]


def test_no_wallet_says_how_to_reach_the_one_make_run_made(tmp_path: Path) -> None:
    """A user who ran ``make run`` (``atlas up --data-dir ./atlas-data``) and then types
    ``atlas status`` in the same folder is told the exact command; before, it said "run
    `atlas up`", which they had done."""
    environ = {k: v for k, v in atlas_env(tmp_path).items()
               if not k.startswith("ATLAS_")} | {"HOME": str(tmp_path / "home")}  # fmt: skip
    nowhere = subprocess.run(atlas("status"), env=environ, cwd=tmp_path, capture_output=True,
                             text=True, timeout=60, check=False)  # fmt: skip
    assert nowhere.returncode == 1
    assert f"no wallet in {tmp_path / 'home' / '.atlas'}" in nowhere.stderr, nowhere.stderr
    assert "ATLAS_HOME=DIR" in nowhere.stderr and "--data-dir DIR" in nowhere.stderr
    (tmp_path / "atlas-data").mkdir()
    (tmp_path / "atlas-data" / "wallet.json").write_text("{}")
    beside = subprocess.run(atlas("status"), env=environ, cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert beside.returncode == 1
    assert "ATLAS_HOME=atlas-data atlas status" in beside.stderr, beside.stderr
