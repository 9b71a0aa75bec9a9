"""Smoke test: ``python -m loadtest locust --smoke`` runs every locust scenario cleanly.

The load test runs as a subprocess, as ``make loadtest`` runs it; it starts the test
origin, ``atlas up`` and locust (its own process: locust monkeypatches whatever imports
it with gevent, so neither this test nor the orchestrator imports it or anything under
``loadtest/``). One user per scenario for a few seconds (about 20 s
in all); only that each scenario ran without a failure and that the reports exist
is checked, not the speeds.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ["-m", "loadtest", "locust"]
SCENARIOS = {"browser", "mobile", "paying", "operator"}


@pytest.mark.slow
def test_smoke_load_test_runs_every_scenario_without_failures(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, *RUNNER, "--smoke", "--reports", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    output = result.stdout[-4000:] + result.stderr[-4000:]
    assert result.returncode == 0, output

    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    scenarios = summary["scenarios"]
    assert set(scenarios) >= SCENARIOS, output
    for name in SCENARIOS:
        assert scenarios[name]["requests"] > 0, (name, output)
        assert scenarios[name]["failures"] == 0, (name, scenarios[name], output)
    assert summary["locust_exit"] == 0, output

    with (tmp_path / "locust_stats.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    names = {row["Name"] for row in rows}
    for name in SCENARIOS:
        assert any(n.startswith(f"{name}: ") for n in names), (name, names)
    assert all(row["Failure Count"] == "0" for row in rows), rows
    assert (tmp_path / "locust.html").stat().st_size > 0
    assert set(summary["processes"]) >= {"edge1", "proxy", "ledger"}


@pytest.mark.slow
def test_the_market_scenario_serves_free_users_without_a_402_and_pays_the_winners(
    tmp_path: Path,
) -> None:
    """``--scenario market`` (four bidders, four free users, one market edge) for 8 s: the
    free users and the losing bid only through the free lane, every answer 200; the
    winners' paid lane carries bytes. Rates are printed, not checked."""
    result = subprocess.run(
        [sys.executable, *RUNNER, "--scenario", "market", "-t", "8s", "--reports", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    output = result.stdout[-4000:] + result.stderr[-4000:]
    assert result.returncode == 0, output
    users = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["users"]
    free = [u for u in users if u["bid"] is None]
    paid = {u["bid"]: u["lanes"].get("paid", 0) for u in users if u["bid"] is not None}
    assert len(free) == 4 and all(set(u["statuses"]) == {"200"} for u in free), output
    assert all(u["lanes"].get("paid", 0) == 0 < u["lanes"]["free"] for u in free), output
    assert paid["5"] > 0 and paid["4"] > 0 and paid["3"] > 0 and paid["2"] == 0, output
    assert "free users:" in result.stdout and "0 answers 402" in result.stdout, output
