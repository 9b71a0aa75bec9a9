"""``atlas up --ledger tron``: the local network on the offline TRON node it starts (real
processes): the ready line says which ledger runs and names the contract, config.json
points every ``atlas`` command of the data dir at it, and the wallet's funds are visible
through ``atlas wallet balance``. Ctrl-C stops it all. A data dir that ran on the
embedded ledger pays on TRON next time (its old channels are another ledger's)."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from tests.launcher.atlas_up import ATLAS, env, fetch, start_up
from tests.processes import Running


def test_up_on_tron_names_its_ledger_and_the_wallet_is_funded_there(tmp_path: Path) -> None:
    data_dir = tmp_path / "atlas"
    up = start_up(data_dir, "--ledger", "tron", edges=1)
    try:
        info = up.info
        assert info["ledger_backend"] == "tron"
        contract, node = str(info["contract"]), str(info["ledger"])
        assert contract.startswith("T") and str(info["token"]).startswith("T")
        assert node.startswith("tron+http://127.0.0.1:") and node.endswith(f"?contract={contract}")
        up.wait_log(rf"ledger: the offline TRON node at http://127\.0\.0\.1:\d+, channel "
                    rf"contract {contract}")  # fmt: skip
        assert json.loads((data_dir / "config.json").read_text())["ledger"] == node
        balance = subprocess.run(
            [*ATLAS, "wallet", "balance"], env={**env(), "ATLAS_HOME": str(data_dir)},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert balance.returncode == 0, balance.stderr
        assert balance.stdout.strip() == "1000 BTT"
    finally:
        up.proc.send_signal(signal.SIGINT)
        assert up.wait() == 0
    assert "then the ledger" in "".join(up.log)


def test_up_refuses_a_ledger_it_cannot_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [*ATLAS, "up", "--data-dir", str(tmp_path), "--ledger", "tron:mainnet"],
        env=env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "is not a ledger: embedded, tron, or the URL of a running offline TRON node" in (
        done.stderr
    )


def test_a_data_dir_that_ran_on_the_embedded_ledger_pays_on_tron(
    origin: Running, tmp_path: Path
) -> None:
    data_dir, charge = tmp_path / "atlas", {"ATLAS_FREE_MIB": "0"}
    for ledger in ("embedded", "tron"):
        up = start_up(data_dir, "--ledger", ledger, edges=1, more_env=charge)
        try:
            out = tmp_path / f"{ledger}.out"
            done = fetch(data_dir, f"{origin.url}/bytes/600000?t={ledger}", out, "--json")
            assert done.returncode == 0, done.stderr  # not the embedded channel's voucher
            assert int(json.loads(done.stdout)["paid"]) > 0
        finally:
            up.proc.send_signal(signal.SIGINT)
            assert up.wait() == 0
