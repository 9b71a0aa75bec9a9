"""A watched edge for the dashboard and Prometheus tests: real processes, real payments.

A tracker edge, and the watched edge (no free allowance, its tracker the first, a
history sample every second) after a paid ``atlas fetch`` through it, a cache miss
and a hit. The payer's home and the fetch's JSON summary come with it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.edge.edge_client import fetch, wait_for_seal
from tests.processes import Running, start_edge
from tests.sdk.conftest import Home, fund_edges, make_home

CHUNK = 256 * 1024
DOWNLOAD = 12 * CHUNK + 100


@dataclass
class Watched:
    ledger: str
    tracker: Running
    data_dir: Path
    edge: Running
    home: Home
    summary: dict[str, Any]
    """``atlas fetch --json``'s summary of the paid download."""

    def restart(self) -> None:
        """Stop the watched edge (it redeems on the way out) and start it on the same data."""
        assert self.edge.stop() == 0
        self.edge = start_watched(self.data_dir, self.ledger, self.tracker)


def start_watched(data_dir: Path, ledger: str, tracker: Running) -> Running:
    return start_edge(data_dir, ledger, "--free-mib", "0", "--history-interval", "1",
                      "--tracker", tracker.url)  # fmt: skip


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory, ledger: Running,
            origin: Running) -> Iterator[Watched]:  # fmt: skip
    tracker = start_edge(tmp_path_factory.mktemp("tracker"), ledger.url)
    data_dir = tmp_path_factory.mktemp("watched")
    started = [tracker]
    try:
        edge = start_watched(data_dir, ledger.url, tracker)
        started.append(edge)
        asyncio.run(fund_edges(ledger.url, [edge.url]))
        home = make_home(tmp_path_factory.mktemp("payer"), [edge.url], ledger.url)
        result = home.atlas("fetch", f"{origin.url}/bytes/{DOWNLOAD}?t=dashboard", "-o",
                            str(home.path / "download.bin"), "--json")  # fmt: skip
        assert result.returncode == 0, result.stderr
        asyncio.run(cache_hit(edge.url, f"{origin.url}/cached/dashboard"))
        net = Watched(ledger.url, tracker, data_dir, edge, home, json.loads(result.stdout))
        yield net
        started[1] = net.edge  # a test may have restarted it
    finally:
        for running in reversed(started):
            running.stop()


async def cache_hit(edge: str, url: str) -> None:
    """A miss, then a hit, of ``url`` on ``edge``."""
    async with aiohttp.ClientSession() as session:
        first = await fetch(session, edge, url)
        await wait_for_seal(session, edge, first.info["content_id"])
        assert (await fetch(session, edge, url)).info["cache"] == "HIT"


async def page(edge: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{edge}/") as r:
        assert r.status == 200 and r.content_type == "text/html"
        return await r.text()


def polylines(html_text: str) -> dict[str, list[tuple[float, float]]]:
    """Each plotted series' points, by its name."""
    out = {}
    for name, points in re.findall(r'data-series="([^"]+)"[^>]*points="([^"]*)"', html_text):
        out[name] = [(float(x), float(y)) for x, y in (p.split(",") for p in points.split())]
    return out


def card(html_text: str, title: str) -> str:
    """The value shown on the card named ``title``."""
    found = re.search(rf'<h2>{re.escape(title)}</h2><div class="value">(.*?)</div>', html_text)
    assert found, title
    return found.group(1)
