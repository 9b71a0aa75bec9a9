"""The edge's status page (``GET /``) after a real paid download: earnings in BTT,
traffic by lane and cache outcome, the store against its cap, the payer's channel,
the ledger's and tracker's health, plots with data, and a history that survives a
restart. Values that come from outside are escaped (a rendering check)."""

from __future__ import annotations

import asyncio
import html
import time

from cdn_edge.dashboard.facts import Facts, Totals
from cdn_edge.dashboard.health import Health, Probe
from cdn_edge.dashboard.history import Sample
from cdn_edge.dashboard.page import render
from cdn_edge.payments import ChannelRecord
from cdn_edge.settlement import SettleClock
from requester.protocol import BTT_LOCAL, format_amount
from tests.edge.dashboard_network import Watched, card, page, polylines, watched

__all__ = ["watched"]


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


async def test_page_shows_what_the_edge_earned_and_served(watched: Watched) -> None:
    paid = int(watched.summary["paid"])
    assert paid > 0
    await asyncio.sleep(1.5)  # a history sample after the download
    shown = await wait_for_probes(watched.edge.url)

    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in shown
    assert '<meta http-equiv="refresh"' in shown and "<script" not in shown
    for title in ("Earned today", "Last 7 days", "Unredeemed"):
        assert card(shown, title) == btt(paid), title
    assert card(shown, "Redeemed") == btt(0)
    assert card(shown, "Next settlement").startswith("in ")
    assert card(shown, "Open channels") == "1"
    # atlas fetch's miss, then the test's own miss and hit of another URL
    assert card(shown, "Cache hit ratio (24 h)") == "33%"
    assert "hits 1, misses 2" in shown
    assert str(watched.home.address) in shown  # the payer, in the channels table
    assert "Paid lane, since start</th><td>3.0 MiB" in shown  # 12 chunks and 100 bytes
    assert f'Tracker {watched.tracker.url}</th><td><span class="ok">● up' in shown
    assert '<th>Ledger</th><td><span class="ok">● up' in shown
    plotted = polylines(shown)
    # Both lines start on the base line (y = 160: the sample taken at start) and rise.
    for name in ("earned", "paid lane"):
        ys = [y for _, y in plotted[name]]
        assert len(ys) >= 2 and max(ys) == 160 and min(ys) < 160, (name, plotted[name])


async def test_history_survives_a_restart(watched: Watched) -> None:
    paid = int(watched.summary["paid"])
    await asyncio.sleep(1.5)
    before = polylines(await page(watched.edge.url))
    watched.restart()  # redeems what it earned on the way out
    shown = await page(watched.edge.url)
    # Today's earnings come from the samples kept before the restart: without them
    # the first sample of this run (all earned so far) would be today's baseline.
    assert card(shown, "Earned today") == btt(paid)
    assert card(shown, "Redeemed") == btt(paid) and card(shown, "Unredeemed") == btt(0)
    after = polylines(shown)
    assert len(after["earned"]) >= len(before["earned"])
    assert len(after["paid lane"]) >= len(before["paid lane"])


def test_outside_values_are_escaped() -> None:
    now = time.time()
    evil = '<img src=x onerror="alert(1)">'
    facts = Facts(
        now=now, asset=BTT_LOCAL, earned=5, redeemed=0, today=5, week=5,
        settling=SettleClock(now + 60), settle_interval=60, day=Totals(), lanes={}, cache={},
        stored_bytes=0, store_cap=1, tunnels_open=0, tunnels_opened=0, tunnel_bytes={},
        channels=[ChannelRecord(evil, evil, "atlas:local", 9, 5, 5, 0, int(now) + 60)],
        torrents_on=False, seeded_bytes=0,
        health=Health(Probe(False, now, 0, evil), {evil: Probe(True, now, 0.01)}),
        series=[Sample(int(now), 1, 5, 0, 0, 0, 0, 0, 0, 1)],
    )  # fmt: skip
    shown = render(facts, evil, evil, evil)
    assert evil not in shown and "<img" not in shown
    assert html.escape(evil) in shown
