"""The edge's status page (``GET /``) after a real paid download: earnings in BTT,
traffic by lane and cache outcome, the store against its cap, the payer's channel,
the ledger's and tracker's health, plots with data (in the HTML, and drawn by Debian's
headless Chromium), and a history that survives a restart. Values that come from
outside are escaped (a rendering check).

``ATLAS_SAVE_SCREENSHOTS=1`` also writes Chromium's screenshot to docs/edge-dashboard.png.
"""

from __future__ import annotations

import asyncio
import html
import os
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
from PIL import Image, ImageChops

from cdn_edge.dashboard.facts import Facts, Totals
from cdn_edge.dashboard.health import Health, Probe
from cdn_edge.dashboard.history import KEEP_SECONDS, History, Sample
from cdn_edge.dashboard.page import render
from cdn_edge.dashboard.plots import BOTTOM, HEIGHT
from cdn_edge.payment_rows import ChannelRecord
from cdn_edge.settlement import SettleClock
from cdn_edge.torrent.session import TorrentView
from requester.protocol import BTT_LOCAL, format_amount
from tests.edge.dashboard_network import Watched, card, page, polylines, watched
from tests.edge.edge_client import metrics as edge_metrics

__all__ = ["watched"]

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=3000"]  # fmt: skip
SCREENSHOT = Path(__file__).parents[2] / "docs" / "edge-dashboard.png"
BLUE = (0x2F, 0x6F, 0xDF)
"""The colour of each plot's first line (cdn_edge/dashboard/plots.py): earned, paid lane."""


def colour_mask(image: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    """255 where ``image`` is within 12 of ``colour`` in every channel, else 0."""
    solid = Image.new("RGB", image.size, colour)
    bands = ImageChops.difference(image, solid).split()
    masks = [band.point(lambda v: 255 if v <= 12 else 0) for band in bands]
    return ImageChops.darker(ImageChops.darker(masks[0], masks[1]), masks[2])


async def scrape(edge: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as session:
        return await edge_metrics(session, edge)


def btt(units: int) -> str:
    return html.escape(format_amount(units, BTT_LOCAL))


async def wait_for_probes(edge: str) -> str:
    """The page once the first probes have answered (they run at start)."""
    for _ in range(100):
        shown = await page(edge)
        if "not checked yet" not in shown:
            return shown
        await asyncio.sleep(0.2)
    raise AssertionError("the probes did not answer in 20 s")


async def wait_for(edge: str, part: str) -> str:
    """The page once it shows ``part`` (within 20 s)."""
    for _ in range(100):
        shown = await page(edge)
        if part in shown:
            return shown
        await asyncio.sleep(0.2)
    raise AssertionError(f"the page did not show {part!r} in 20 s")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium missing")
def test_dashboard_after_a_paid_download_and_a_restart(watched: Watched, tmp_path: Path) -> None:
    """One test, so one network (a module's tests may run in two xdist workers): the page,
    Chromium's drawing of it, then the page after a restart."""
    paid = int(watched.summary["paid"])
    assert paid > 0
    time.sleep(1.5)  # a history sample after the download
    before = check_page(asyncio.run(wait_for_probes(watched.edge.url)), watched, paid)
    check_drawing(f"{watched.edge.url}/", tmp_path)
    watched.restart()  # redeems what it earned on the way out
    shown = asyncio.run(page(watched.edge.url))
    # Today's earnings come from the samples kept before the restart: without them
    # the first sample of this run (all earned so far) would be today's baseline.
    assert card(shown, "Earned today") == btt(paid)
    assert card(shown, "Redeemed") == btt(paid) and card(shown, "Unredeemed") == btt(0)
    after = polylines(shown)
    assert len(after["earned"]) >= len(before["earned"])
    assert len(after["paid lane"]) >= len(before["paid lane"])
    # The tracker goes away: the next probe (every second here) says so, page and metrics.
    tracker = watched.tracker.url
    watched.tracker.stop()
    shown = asyncio.run(wait_for(watched.edge.url, f'Tracker {tracker}</th><td><span class="bad">'))
    assert '<th>Ledger</th><td><span class="ok">● up' in shown
    samples = asyncio.run(scrape(watched.edge.url))
    assert samples[f'atlas_edge_tracker_up{{tracker="{tracker}"}}'] == 0
    assert samples["atlas_edge_ledger_up"] == 1


def check_page(shown: str, watched: Watched, paid: int) -> dict[str, list[tuple[float, float]]]:
    """What the page says after the download; returns its plots' points."""
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in shown
    assert '<meta http-equiv="refresh"' in shown and "<script" not in shown
    for title in ("Earned today", "Last 7 days", "Unredeemed"):
        assert card(shown, title) == btt(paid), title
    assert card(shown, "Redeemed") == btt(0)
    assert card(shown, "Next settlement").startswith("in ")
    assert card(shown, "Open channels") == "1"
    assert card(shown, "Price per MiB") == btt(BTT_LOCAL.one // 1000)  # the default 0.001
    # atlas fetch's miss, then the fixture's own miss and hit of another URL
    assert card(shown, "Cache hit ratio (24 h)") == "33%"
    assert "hits 1, misses 2" in shown
    assert str(watched.home.address) in shown  # the payer, in the channels table
    assert "Paid lane, since start</th><td>3.0 MiB" in shown  # 12 chunks and 100 bytes
    assert f'Tracker {watched.tracker.url}</th><td><span class="ok">● up' in shown
    assert '<th>Ledger</th><td><span class="ok">● up' in shown
    plotted = polylines(shown)
    # Both lines start on the base line (the sample taken at start) and rise.
    base = HEIGHT - BOTTOM
    for name in ("earned", "paid lane"):
        ys = [y for _, y in plotted[name]]
        assert len(ys) >= 2 and max(ys) == base and min(ys) < base, (name, plotted[name])
    return plotted


def check_drawing(url: str, tmp_path: Path) -> None:
    """Headless Chromium's DOM holds both plots' points, and its screenshot shows the blue
    lines (earned, paid lane) rising; the screenshot goes to docs/ when asked."""
    assert CHROMIUM is not None
    profile = f"--user-data-dir={tmp_path / 'profile'}"
    dom = subprocess.run([CHROMIUM, *FLAGS, profile, "--dump-dom", url], capture_output=True,
                         text=True, timeout=60, check=False)  # fmt: skip
    plotted = polylines(dom.stdout)
    assert len(plotted["earned"]) >= 2 and len(plotted["paid lane"]) >= 2, dom.stderr[-2000:]
    shot = tmp_path / "dashboard.png"
    done = subprocess.run([CHROMIUM, *FLAGS, profile, "--window-size=1200,920",
                           f"--screenshot={shot}", url], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert shot.exists(), done.stderr[-2000:]
    with Image.open(shot) as image:
        blue = colour_mask(image.convert("RGB"), BLUE)
    box = blue.getbbox()
    # The earned and paid lines: many pixels, from the base line to the plots' tops.
    assert box is not None and blue.histogram()[255] > 300, box
    assert box[3] - box[1] > 80, f"the blue lines stay flat: {box}"
    if os.environ.get("ATLAS_SAVE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, SCREENSHOT)


def test_outside_values_are_escaped() -> None:
    now = time.time()
    evil = '<img src=x onerror="alert(1)">'
    facts = Facts(
        now=now, asset=BTT_LOCAL, earned=5, redeemed=0, today=5, week=5,
        settling=SettleClock(now + 60), settle_interval=60, day=Totals(), lanes={}, cache={},
        stored_bytes=0, store_cap=1, tunnels_open=0, tunnels_opened=0, tunnel_bytes={},
        channels=[ChannelRecord(evil, evil, "atlas:local", 9, 5, 5, 0, int(now) + 60)],
        torrents_on=True, seeded_bytes=0, price_per_mib=1, market_winners=None,
        torrents=[TorrentView(evil, evil, 10, 5, 1, 0, 1, evil)],
        health=Health(Probe(False, now, 0, evil), {evil: Probe(True, now, 0.01)}),
        series=[Sample(int(now), 1, 5, 0, 0, 0, 0, 0, 0, 1)],
    )  # fmt: skip
    shown = render(facts, evil, evil, evil)
    assert evil not in shown and "<img" not in shown
    assert "<h2>Torrents</h2>" in shown  # the torrent's name, hash and state: escaped too
    assert html.escape(evil) in shown


async def test_history_is_bounded_and_kept_on_disk(tmp_path: Path) -> None:
    def sample(t: int, earned: int) -> Sample:
        return Sample(t, 60, earned, 0, 100, 0, 1, 0, 0, 1)

    history = History(tmp_path / "history.sqlite3", max_rows=5)
    await history.open()
    start = 1_700_000_000
    for i in range(8):
        await history.add(sample(start + 60 * i, i))
    assert [s.t for s in await history.since(0)] == [start + 60 * i for i in range(3, 8)]
    await history.add(sample(start + 60 * 7, 7))  # the same interval again adds to it
    await history.close()
    reopened = History(tmp_path / "history.sqlite3", max_rows=5)
    await reopened.open()
    last = (await reopened.since(start + 60 * 6))[0]
    assert (last.seconds, last.paid_bytes, last.hits, last.earned) == (120, 200, 2, 7)
    assert (await reopened.at(start + 60 * 5 + 30)).earned == 5  # type: ignore[union-attr]
    assert (await reopened.at(0)).earned == 3  # type: ignore[union-attr]  # the first kept
    later = start + 60 * 7 + KEEP_SECONDS + 1
    await reopened.add(sample(later, 9))  # a week and a day on: the old rows go
    assert [s.t for s in await reopened.since(0)] == [later]
    await reopened.close()
