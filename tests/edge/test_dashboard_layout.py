"""The edge dashboard's layout in Debian's headless Chromium, on a phone and a desktop: an
amount with all its decimals stays inside its card (issue 19: amounts in BTT with the
asset's decimals, readable on a phone). Chromium clipped ``0.0232587890625 BTT`` to
``0.023258789062`` before: the next card was drawn over the rest."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from cdn_edge.dashboard.facts import Facts, Totals
from cdn_edge.dashboard.health import Health, Probe
from cdn_edge.dashboard.history import Sample
from cdn_edge.dashboard.page import render
from cdn_edge.settlement import SettleClock
from requester.protocol import BTT_LOCAL

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=2000"]  # fmt: skip
MEASURE = """<script>addEventListener("load", () => {
  const over = [...document.querySelectorAll(".card")]
    .filter(c => c.scrollWidth > c.clientWidth + 1)
    .map(c => c.querySelector("h2").textContent);
  document.body.dataset.overflow = JSON.stringify(over);
});</script>"""
"""Added by the test only (the page itself has no script): the cards whose content is wider
than the card."""


def long_amounts_page() -> str:
    now = time.time()
    earned = 23_258_789_062_500_000  # 0.0232587890625 BTT, as a real paid download left it
    facts = Facts(
        now=now, asset=BTT_LOCAL, earned=earned, redeemed=earned // 3, today=earned,
        week=earned, settling=SettleClock(now + 60), settle_interval=60, day=Totals(),
        lanes={}, cache={}, stored_bytes=8 << 20, store_cap=10 << 30, tunnels_open=0,
        tunnels_opened=0, tunnel_bytes={}, channels=[], torrents_on=False, seeded_bytes=0,
        price_per_mib=1_234_567_890_123_456, market_winners=None, torrents=[],
        health=Health(Probe(True, now, 0.005), {}),
        series=[Sample(int(now) - 60, 1, 0, 0, 0, 0, 0, 0, 0, 1),
                Sample(int(now), 1, earned, 0, 0, 0, 0, 0, 0, 1)],
    )  # fmt: skip
    return render(facts, "ab" * 32, "TUkntX8Uqy7EYLaxmycmzsjip4cKE1qbUa", "http://127.0.0.1:1")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium missing")
@pytest.mark.parametrize("width", [390, 1280])
def test_long_amounts_stay_inside_their_cards(width: int, tmp_path: Path) -> None:
    """Laid out ``width`` pixels wide by a width on the page's root: headless Chromium's
    window is at least 500 pixels wide whatever --window-size says (the page's only media
    query is the colour scheme)."""
    assert CHROMIUM is not None
    shown = long_amounts_page()
    assert "0.0232587890625 BTT" in shown
    page = tmp_path / "dashboard.html"
    root = f"<style>html{{width:{width}px}}</style></head>"
    page.write_text(shown.replace("</head>", root).replace("</body>", MEASURE + "</body>"))
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--window-size=1280,1000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    measured = re.search(r'data-overflow="([^"]*)"', dom.stdout)
    assert measured is not None, dom.stderr[-2000:]
    assert json.loads(measured[1].replace("&quot;", '"')) == []
