"""Downloads in chunk runs (docs/protocol.md 13) against real edges: fewer requests than
chunks, every byte verified, every chunk of a run paid once, and a liar inside a run
dropped with its evidence while the frames before its bad one are kept."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from pathlib import Path

import aiohttp

from tests.edge.paying import earnings
from tests.origin_server import pattern
from tests.processes import Running, start_edge, start_program
from tests.sdk.conftest import Home, make_home, summary

CHUNK = 256 * 1024


def test_atlas_fetch_takes_a_large_download_in_runs_and_pays_what_the_edge_charged(
    ledger: Running, origin: Running, tmp_path: Path
) -> None:
    size = 48 * CHUNK + 1000
    url = f"{origin.url}/bytes/{size}?t=runs"
    edge = start_edge(tmp_path / "edge", ledger.url, "--free-mib", "0")
    try:
        home = make_home(tmp_path / "home", [edge.url], ledger.url)
        docs = []
        for name in ("first.bin", "cached.bin"):  # the origin pull, then from the store
            out = tmp_path / name
            docs.append(summary(home.atlas("fetch", url, "-o", str(out), "--json")))
            assert out.read_bytes() == pattern(0, size)
        report = asyncio.run(earnings(tmp_path / "edge"))
    finally:
        edge.stop()
    for doc in docs:
        [provider] = doc["providers"].values()
        assert provider["chunks"] == 49 and provider["lane"] == "paid", provider
        assert provider["requests"] <= provider["chunks"] // 3, provider  # runs, not chunks
    [row] = [c for c in report["channels"] if c["payer"] == str(home.address)]
    charged = sum(int(next(iter(d["providers"].values()))["charged"]) for d in docs)
    paid = sum(int(next(iter(d["providers"].values()))["paid"]) for d in docs)
    assert int(row["served"]) == charged  # each chunk charged once, on both sides
    assert int(row["paid"]) == paid >= charged  # the rest of the runs' payment: credit there


def test_a_liar_inside_a_run_is_dropped_with_evidence_and_its_good_frames_kept(
    ledger: Running, origin: Running, tmp_path: Path
) -> None:
    size = 40 * CHUNK
    url = f"{origin.url}/bytes/{size}?t=run-liar"
    honest = start_edge(tmp_path / "honest", ledger.url, "--free-mib", "0")
    # the liar relays the same edge, which holds every chunk, and corrupts run frames only
    liar = start_program(
        [sys.executable, str(Path(__file__).parents[1] / "corrupting_provider.py"),
         "--upstream", honest.url, "--every", "3", "--runs-only"]
    )  # fmt: skip
    try:
        home: Home = make_home(tmp_path / "home", [honest.url, liar.url], ledger.url)
        out = tmp_path / "out.bin"
        summary(home.atlas("fetch", url, "-o", str(out), "--json", "--edge", honest.url))
        doc = summary(home.atlas("fetch", url, "-o", str(out), "--json"))  # cached: runs
        liar_stats = asyncio.run(_stats(liar.url))
    finally:
        liar.stop()
        honest.stop()
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(pattern(0, size)).digest()
    assert liar_stats["corrupted_in_runs"] >= 1 and liar_stats["runs"] >= 1, liar_stats
    evidence = doc["evidence"][liar.url]
    index = int(evidence["index"])
    assert f"bad chunk {index}" in doc["dropped"][liar.url]
    assert evidence["head"] and evidence["statement"]
    good = hashlib.sha256(pattern(index * CHUNK, CHUNK)).hexdigest()
    assert evidence["sha256_received"] != good
    # its first chunk (asked alone, before runs) and the two frames before its third in a
    # run were verified and kept
    stats = doc["providers"][liar.url]
    assert stats["chunks"] >= 3 and stats["requests"] < stats["chunks"], stats


async def _stats(url: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/__liar/stats") as resp:
        stats: dict[str, int] = await resp.json()
        return stats


def test_a_run_in_steady_progress_is_not_raced_as_a_straggler(
    ledger: Running, origin: Running, tmp_path: Path
) -> None:
    """Chunks of a run at a slow origin's pace arrive later than a straggler's 2 s after the
    run began, each soon after the last: none is asked (and paid for) a second time."""
    size = 40 * CHUNK
    url = f"{origin.url}/slow/{size}?delay=0.006&t=steady-run"  # ~0.1 s per chunk
    edge = start_edge(tmp_path / "edge", ledger.url, "--free-mib", "0")
    try:
        home = make_home(tmp_path / "home", [edge.url], ledger.url)
        out = tmp_path / "steady.bin"
        doc = summary(home.atlas("fetch", url, "-o", str(out), "--json"))
        assert out.read_bytes() == pattern(0, size)
    finally:
        edge.stop()
    [provider] = doc["providers"].values()
    assert doc["seconds"] > 3  # the origin's pace: runs outlived the straggler bound
    assert (provider["chunks"], provider["raced"]) == (40, 0), provider  # each came once
