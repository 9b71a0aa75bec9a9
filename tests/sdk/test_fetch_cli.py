"""``atlas fetch``, ``atlas wallet`` and ``atlas channel`` as a user runs them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from requester.ledger_client import LedgerClient
from requester.protocol import BTT_LOCAL, format_amount
from tests.origin_server import pattern
from tests.processes import Running, start_edge
from tests.sdk.conftest import Home, fund_edges, make_home, summary

CHUNK = 256 * 1024


def channel_rows(home: Home) -> list[dict[str, str]]:
    listed = home.atlas("channel", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows: list[dict[str, str]] = json.loads(listed.stdout)
    return rows


async def ledger_channels(ledger: str, home: Home) -> list[dict[str, str]]:
    async with aiohttp.ClientSession() as session:
        return await LedgerClient(ledger, session).channels(home.address)


def test_fetch_writes_the_origin_bytes_and_a_summary(
    home: Home, origin: Running, tmp_path: Path
) -> None:
    out = tmp_path / "f.bin"
    size = 20 * CHUNK + 5
    doc = summary(home.atlas("fetch", f"{origin.url}/bytes/{size}?t=cli", "-o", str(out), "--json"))
    assert out.read_bytes() == pattern(0, size)
    assert not out.with_name("f.bin.part").exists() and not out.with_name("f.bin.atlas").exists()
    assert doc["bytes"] == size and doc["status"] == 200
    assert int(doc["paid"]) == sum(int(p["paid"]) for p in doc["providers"].values()) > 0
    assert sum(p["chunks"] for p in doc["providers"].values()) >= 21


def test_stdout_streams_the_body(home: Home, origin: Running) -> None:
    result = home.atlas("fetch", f"{origin.url}/text/70000?t=stdout")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) == 70000


def test_spend_limit_is_never_passed(home: Home, origin: Running, tmp_path: Path) -> None:
    out = tmp_path / "capped.bin"
    limit = "0.001"  # an edge's default price is 0.001 BTT per MiB: 4 chunks' worth
    result = home.atlas("fetch", f"{origin.url}/bytes/{40 * CHUNK}?t=cap", "-o", str(out),
                        "--max-spend", limit)  # fmt: skip
    assert result.returncode != 0
    assert "would pass the spend limit of 0.001 BTT" in result.stderr  # a real quote was met
    # Six chunk requests are paid at once: how many payments finish before the one that
    # would pass the limit stops the download depends on timing; the limit never does.
    spent = sum(int(r["spent_units"]) for r in channel_rows(home))
    assert spent <= 10**15  # 0.001 BTT in base units
    assert not out.exists()


def test_price_above_the_limit_is_refused(home: Home, origin: Running, tmp_path: Path) -> None:
    result = home.atlas("fetch", f"{origin.url}/bytes/{2 * CHUNK}?t=price",
                        "-o", str(tmp_path / "p.bin"), "--max-price", "0.0000001")  # fmt: skip
    assert result.returncode != 0
    assert "above the limit" in result.stderr
    assert channel_rows(home) == []


def test_resume_after_kill_9_pays_nothing_twice(
    home: Home, origin: Running, tmp_path: Path
) -> None:
    out = tmp_path / "big.bin"
    size = 160 * CHUNK
    url = f"{origin.url}/slow/{size}?delay=0.003&t=resume"
    proc = home.popen("fetch", url, "-o", str(out), "--json")
    sidecar = out.with_name("big.bin.atlas")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if sidecar.exists() and json.loads(sidecar.read_text())["chunks_done"] >= 16:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = json.loads(sidecar.read_text())["chunks_done"]
    assert 16 <= done_before < 160
    spent_before = sum(int(r["spent_units"]) for r in channel_rows(home))
    doc = summary(home.atlas("fetch", url, "-o", str(out), "--json"))
    assert doc["resumed_from_chunk"] == done_before
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(pattern(0, size)).digest()
    chunks_after = sum(p["chunks"] - p["raced"] for p in doc["providers"].values())
    assert chunks_after == 160 - done_before  # nothing on disk was fetched (or paid) again
    spent_after = sum(int(r["spent_units"]) for r in channel_rows(home))
    assert spent_after - spent_before == int(doc["paid"])


def test_settled_balances_equal_what_the_summary_says(
    origin: Running, ledger: Running, tmp_path: Path
) -> None:
    """Edges redeem on shutdown; then the ledger holds exactly what the summary paid."""
    own = [start_edge(tmp_path / f"e{i}", ledger.url, "--free-mib", "0") for i in range(2)]
    try:
        asyncio.run(fund_edges(ledger.url, [e.url for e in own]))
        home = make_home(tmp_path / "home", [e.url for e in own], ledger.url)
        doc = summary(home.atlas("fetch", f"{origin.url}/bytes/{30 * CHUNK}?t=settle",
                                 "-o", str(tmp_path / "s.bin"), "--json"))  # fmt: skip
    finally:
        for edge in own:
            assert edge.stop() == 0  # SIGTERM: redeem, then exit
    rows = channel_rows(home)
    assert sum(int(r["spent_units"]) for r in rows) == int(doc["paid"]) > 0, (rows, doc)
    on_ledger = asyncio.run(ledger_channels(ledger.url, home))
    assert sum(int(c["redeemed"]) for c in on_ledger) == int(doc["paid"])
    balance = asyncio.run(_balance(ledger.url, home))
    assert balance + sum(int(c["deposit"]) for c in on_ledger) == 50 * BTT_LOCAL.one


async def _balance(ledger: str, home: Home) -> int:
    async with aiohttp.ClientSession() as session:
        return await LedgerClient(ledger, session).balance(home.address)


def test_clear_errors(home: Home, origin: Running, ledger: Running, tmp_path: Path) -> None:
    bad = home.atlas("fetch", "notaurl")
    assert bad.returncode != 0 and "absolute http(s)" in bad.stderr
    missing = home.atlas("fetch", f"{origin.url}/status/404?t=err", "-o", str(tmp_path / "x"),
                         "--json")  # fmt: skip
    assert json.loads(missing.stdout)["status"] == 404
    assert missing.returncode == 1 and "origin answered 404" in missing.stderr
    dead = home.atlas("fetch", f"{origin.url}/bytes/10", "--edge", "http://127.0.0.1:9")
    assert dead.returncode != 0 and "no edge could fetch it" in dead.stderr
    poor = make_home(tmp_path / "poor", home.edges, ledger.url, funds=0)
    broke = poor.atlas("fetch", f"{origin.url}/bytes/{4 * CHUNK}?t=poor", "-o",
                       str(tmp_path / "poor.bin"))  # fmt: skip
    assert broke.returncode != 0
    assert "wallet balance is 0 BTT" in broke.stderr and "10 BTT missing" in broke.stderr


def test_wallet_and_channel_commands(home: Home, edges: list[Running]) -> None:
    shown = home.atlas("wallet", "show")
    assert shown.stdout.strip() == str(home.address)
    assert home.atlas("wallet", "balance").stdout.strip() == "50 BTT"
    funded = home.atlas("wallet", "fund", "2.5")
    assert funded.returncode == 0 and "balance 52.5 BTT" in funded.stdout
    opened = home.atlas("channel", "open", edges[0].url, "--deposit", "3", "--hours", "1")
    assert opened.returncode == 0, opened.stderr
    ch = json.loads(opened.stdout)
    assert ch["deposit"] == "3 BTT"
    topped = home.atlas("channel", "topup", ch["channel_id"], "1.25")
    assert topped.returncode == 0, topped.stderr
    assert json.loads(topped.stdout)["deposit"] == "4.25 BTT"
    assert home.atlas("wallet", "balance").stdout.strip() == "48.25 BTT"
    rows = channel_rows(home)
    assert [r["deposit"] for r in rows] == ["4.25 BTT"]
    assert format_amount(int(rows[0]["deposit_units"]), BTT_LOCAL) == "4.25 BTT"
    closed = home.atlas("channel", "close", ch["channel_id"])
    assert closed.returncode == 0 and "reclaimed after" in closed.stdout
    assert home.atlas("channel", "topup", "zz", "1").returncode == 2


def test_deposit_policy_comes_from_the_config(home: Home, origin: Running, tmp_path: Path) -> None:
    config = json.loads((home.path / "config.json").read_text())
    (home.path / "config.json").write_text(json.dumps({**config, "deposit": "2.5",
                                                       "channel_hours": 2}))  # fmt: skip
    doc = summary(home.atlas("fetch", f"{origin.url}/bytes/{CHUNK}?t=policy",
                             "-o", str(tmp_path / "p.bin"), "--json"))  # fmt: skip
    assert int(doc["paid"]) > 0
    rows = channel_rows(home)
    assert rows and all(r["deposit"] == "2.5 BTT" for r in rows)
    assert all(abs(int(r["expires_at"]) - time.time() - 7200) < 120 for r in rows)
    (home.path / "config.json").write_text(json.dumps({**config, "deposit": "lots"}))
    bad = home.atlas("fetch", f"{origin.url}/bytes/10?t=policy2")
    assert bad.returncode == 1 and "config.json deposit" in bad.stderr


def test_the_default_spend_ceiling_stops_a_fetch_that_can_then_resume(
    home: Home, origin: Running, ledger: Running, tmp_path: Path
) -> None:
    """Issue 13, defect 8: with no --max-spend a fetch spent without bound (a bomb: 0.65 BTT
    and a 646 MiB .part). Now it stops at max_spend (1 BTT unless set), says how to raise it,
    and keeps what it fetched so the same command, with a higher limit, finishes it."""
    pricey = start_edge(tmp_path / "pricey", ledger.url, "--free-mib", "0", "--price", "0.1")
    try:  # 0.1 BTT per MiB: 1 BTT buys 10 MiB
        out = tmp_path / "big.bin"
        size = 48 * CHUNK
        url = f"{origin.url}/bytes/{size}?t=ceiling"
        stopped = home.atlas("fetch", url, "--edge", pricey.url, "-o", str(out))
        assert stopped.returncode == 1
        assert "would pass the spend limit of 1 BTT" in stopped.stderr, stopped.stderr
        assert "--max-spend" in stopped.stderr and "ATLAS_MAX_SPEND" in stopped.stderr
        assert 0 < sum(int(r["spent_units"]) for r in channel_rows(home)) <= BTT_LOCAL.one
        kept = json.loads(out.with_name("big.bin.atlas").read_text())["chunks_done"]
        assert kept > 0 and out.with_name("big.bin.part").stat().st_size == kept * CHUNK
        assert f"the {kept} chunks fetched are kept in" in stopped.stderr

        # The environment beats config.json, which beats the default; a flag beats all.
        config = home.path / "config.json"
        config.write_text(json.dumps({**json.loads(config.read_text()), "max_spend": "0.3"}))
        again = home.atlas("fetch", f"{url}&x=1", "--edge", pricey.url, "-o", str(out) + "1")
        assert "spend limit of 0.3 BTT" in again.stderr, again.stderr
        env = {**home.env, "ATLAS_MAX_SPEND": "0.2"}
        argv = [sys.executable, "-m", "requester.cli", "fetch", f"{url}&x=2", "--edge",
                pricey.url, "-o", str(out) + "2"]  # fmt: skip
        third = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                               check=False)  # fmt: skip
        assert "spend limit of 0.2 BTT" in third.stderr, third.stderr

        doc = summary(home.atlas("fetch", url, "--edge", pricey.url, "-o", str(out), "--json",
                                 "--max-spend", "2"))  # fmt: skip
    finally:
        pricey.stop()
    assert doc["resumed_from_chunk"] == kept and doc["max_spend"] == str(2 * BTT_LOCAL.one)
    assert out.read_bytes() == pattern(0, size)
    assert not out.with_name("big.bin.part").exists()


def test_a_fetch_whose_content_failed_leaves_no_part_behind(
    home: Home, origin: Running, tmp_path: Path
) -> None:
    """A body the origin broke off cannot be finished by running again: nothing is kept."""
    out = tmp_path / "cut.bin"
    result = home.atlas("fetch", f"{origin.url}/short/{40 * CHUNK}?t=nopart", "-o", str(out),
                        timeout=60)  # fmt: skip
    assert result.returncode == 1 and "the content failed" in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("cut")) == []
