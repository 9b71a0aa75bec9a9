"""Channel opens and top-ups cut off by a kill -9, as ``atlas channel`` shows and settles them.

Each open and top-up is recorded, signed, before it is sent
(``requester/recorded_calls.py``). ``atlas channel list`` settles what a kill left
with the ledger: it records a channel the ledger opened, sends again an open or
top-up that never arrived, and lists as pending what it cannot settle while the
ledger is down. The crash matrix (``tests/crash``) checks the same for downloads.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from requester.failpoints import ENV
from requester.ledger_client import LedgerClient
from requester.protocol import BTT_LOCAL
from tests.crash.armed import start_ledger_at
from tests.processes import Running, start_ledger
from tests.sdk.conftest import Home, make_home


def killed_at(home: Home, point: str, *args: str) -> None:
    """Run ``atlas *args`` armed to die the first time it reaches ``point``; check it did."""
    result = subprocess.run(
        [sys.executable, "-m", "requester.cli", *args], env={**home.env, ENV: f"{point}=1"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == -signal.SIGKILL, (result.returncode, result.stderr)


def listed(home: Home) -> list[dict[str, Any]]:
    result = home.atlas("channel", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def on_ledger(home: Home) -> dict[str, int]:
    """The payer's channels on the ledger: id -> deposit."""

    async def read() -> dict[str, int]:
        async with aiohttp.ClientSession() as session:
            views = await LedgerClient(home.ledger, session).channels(home.address)
        return {
            v["channel_id"]: int(v["deposit"]) for v in views if v["payer"] == str(home.address)
        }

    return asyncio.run(read())


@pytest.mark.parametrize("step", ["requested", "answered"])
def test_a_channel_whose_open_and_top_up_were_cut_off_is_listed_and_closed(
    home: Home, edges: list[Running], step: str
) -> None:
    """Killed after recording the call (``requested``: before sending it) or after the ledger
    applied it (``answered``: before recording the answer), the payer loses neither."""
    killed_at(home, f"payer.open_{step}", "channel", "open", edges[0].url, "--deposit", "3")
    assert len(on_ledger(home)) == (1 if step == "answered" else 0)
    (row,) = listed(home)  # settled: found on the ledger, or sent again
    assert on_ledger(home) == {row["channel_id"]: 3 * BTT_LOCAL.one}
    assert (row["status"], row["deposit"], row["pending"]) == ("open", "3 BTT", None)

    cid = row["channel_id"]
    killed_at(home, f"payer.topup_{step}", "channel", "topup", cid, "1.25")
    topped = 17 * BTT_LOCAL.one // 4  # 4.25 BTT
    assert on_ledger(home) == {cid: topped if step == "answered" else 3 * BTT_LOCAL.one}
    (row,) = listed(home)
    assert on_ledger(home) == {cid: topped}
    assert (row["deposit"], row["spent"], row["pending"]) == ("4.25 BTT", "0 BTT", None)

    closed = home.atlas("channel", "close", cid)
    assert closed.returncode == 0 and "reclaimed after" in closed.stdout, closed.stderr
    assert [r["status"] for r in listed(home)] == ["closed"]


def test_an_open_the_ledger_cannot_confirm_is_listed_as_pending(
    tmp_path: Path, edges: list[Running]
) -> None:
    ledger = start_ledger(tmp_path / "ledger")
    try:
        home = make_home(tmp_path / "home", [e.url for e in edges], ledger.url)
        killed_at(home, "payer.open_answered", "channel", "open", edges[0].url, "--deposit", "2")
    finally:
        ledger.stop()
    text = home.atlas("channel", "list")
    assert text.returncode == 0, text.stderr
    assert "pending" in text.stdout and "ledger_unreachable" in text.stdout, text.stdout
    (row,) = listed(home)
    assert (row["status"], row["deposit"]) == ("pending", "2 BTT")
    assert f"open sent to {ledger.url}, not confirmed: ledger_unreachable" in row["pending"]

    again = start_ledger_at(tmp_path / "ledger", ledger.url)  # back at the same address
    try:
        (row,) = listed(home)
        assert (row["status"], row["deposit"], row["pending"]) == ("open", "2 BTT", None)
        assert on_ledger(home) == {row["channel_id"]: 2 * BTT_LOCAL.one}
    finally:
        again.stop()
