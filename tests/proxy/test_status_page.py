"""The proxy's status page (issue 19) shows the wallet's real channels, whoever opened them:
after a real paid ``atlas fetch`` on the data dir of a real ``atlas up``, the proxy's page
lists that fetch's channels before the proxy paid anything itself; then spending per site,
the day's plot (inline SVG) and edge health, amounts in BTT. Headless Chromium renders it
(``ATLAS_DOCS_SCREENSHOTS=1`` copies the shot to docs/proxy-status.png)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_terminal import atlas, atlas_env, paying_network
from tests.e2e.test_chromium import CHROMIUM, FLAGS, distinct_pixels
from tests.launcher.atlas_up import Up
from tests.processes import Running
from tests.proxy.conftest import curl

DOCS_SHOT = Path(__file__).resolve().parents[2] / "docs" / "proxy-status.png"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    yield from paying_network(tmp_path_factory.mktemp("net") / "atlas")


def get(up: Up, path: str) -> bytes:
    bearer = {"Authorization": f"Bearer {up.info['api_token']}"}
    asked = urllib.request.Request(f"{up.info['api']}{path}", headers=bearer)
    with urllib.request.urlopen(asked, timeout=30) as resp:
        body: bytes = resp.read()
        return body


def status(up: Up) -> dict[str, Any]:
    view: dict[str, Any] = json.loads(get(up, "/status.json"))
    return view


@pytest.fixture(scope="module")
def fetched(network: Up, origin: Running, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[dict[str, Any], dict[str, Any], str]:  # fmt: skip
    """One paid ``atlas fetch`` on the network's data dir: its ``--json`` summary, and the
    proxy's status JSON and page right after it (the proxy has paid nothing yet)."""
    assert status(network)["channels"] == []
    out = tmp_path_factory.mktemp("out") / "f"
    done = subprocess.run(
        atlas("fetch", f"{origin.url}/bytes/2000000?t=page", "-o", str(out), "--json"),
        env=atlas_env(Path(str(network.info["data_dir"]))), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), status(network), get(network, "/").decode()


def test_channels_opened_by_atlas_fetch_are_on_the_proxy_page(
    fetched: tuple[dict[str, Any], dict[str, Any], str],
) -> None:
    summary, view, page = fetched
    paid = {url for url, p in summary["providers"].items() if int(p["paid"])}
    assert paid
    assert view["spent_today"] == "0 BTT" and view["per_site"] == {}  # all atlas fetch's
    assert len(view["channels"]) == len(paid)
    assert sum(int(c["spent_units"]) for c in view["channels"]) == int(summary["paid"])
    assert view["wallet_spent_today"] == summary["paid_text"]
    assert all(c["status"] == "open" and c["deposit"].endswith(" BTT") for c in view["channels"])
    for channel in view["channels"]:
        assert channel["payee"] in page and channel["spent"] in page
    assert "none: the wallet has no channel yet" not in page


def test_site_spending_plot_and_edges(
    network: Up, origin: Running, fetched: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    before = status(network)
    assert before["channels"]
    through = curl("-x", str(network.info["proxy"]), f"{origin.url}/bytes/1500000?t=site")
    assert len(through.stdout) == 1500000
    view = status(network)
    assert view["per_site"]["127.0.0.1"].endswith(" BTT")
    assert view["spent_today"] == view["per_site"]["127.0.0.1"] != "0 BTT"
    assert view["wallet_spent_today"] != before["wallet_spent_today"]
    assert len(view["channels"]) == len(before["channels"])  # atlas fetch's, with room: reused
    assert view["spent_by_hour"] and all(v.endswith(" BTT") for v in view["spent_by_hour"].values())
    assert set(view["edges"]) == set(network.edges)
    assert all(e["ok"] for e in view["edges"].values())
    page = get(network, "/").decode()
    assert "<svg" in page and "<rect" in page and "<script" not in page
    hour = next(iter(view["spent_by_hour"]))
    assert f"<title>{hour}:00 UTC: " in page
    assert "127.0.0.1" in page and f"{len(network.edges)} of {len(network.edges)}" in page
    assert "http://" not in page.split("<body>")[0].replace(str(network.info["api"]), "")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium missing")
def test_chromium_renders_the_page(
    network: Up, fetched: tuple[dict[str, Any], dict[str, Any], str], tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    shot = tmp_path / "proxy-status.png"
    url = f"{network.info['api']}/?token={network.info['api_token']}"
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=900,1300",
         "--virtual-time-budget=5000", "--hide-scrollbars", f"--screenshot={shot}", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shot.exists(), done.stderr[-2000:]
    assert distinct_pixels(shot.read_bytes()) > 8
    if os.environ.get("ATLAS_DOCS_SCREENSHOTS") == "1":
        shutil.copyfile(shot, DOCS_SHOT)


SPLIT_WORDS = """<script>addEventListener("load", () => {
  const split = [...document.querySelectorAll("td,th,td *")]
    .filter(e => e.childNodes.length === 1 && e.firstChild.nodeType === Node.TEXT_NODE &&
                 /^[A-Za-z]{1,24}$/.test(e.textContent.trim()))
    .filter(e => { const r = document.createRange(); r.selectNodeContents(e.firstChild);
                   return r.getClientRects().length > 1; })
    .map(e => e.textContent.trim());
  const right = Math.max(...[...document.body.querySelectorAll("*")]
    .map(e => e.getBoundingClientRect().right));
  const wide = right > document.documentElement.getBoundingClientRect().right + 1;
  document.body.dataset.split = JSON.stringify({split, wide});
});</script>"""
"""Added by the test only (the page has no script): the words in tables drawn on more than one
line (a word: letters only, at most 24; a TRON address is 34 base58 characters, about 1 in 250
of them without a digit, and addresses may wrap), and whether anything reaches past the
screen's right edge. Headless Chromium's window is at least 500 pixels wide whatever
--window-size says, so the page is laid out at a phone's 390 pixels by a width on its root
element (the page has no media query to miss)."""


@pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium missing")
def test_a_phone_keeps_each_word_whole(
    fetched: tuple[dict[str, Any], dict[str, Any], str], tmp_path: Path
) -> None:
    """The page on a 390-pixel phone (the mobile API serves it): addresses and amounts may
    wrap, words may not, and nothing is wider than the screen. Every cell could break
    anywhere before, so the channels' 'status' and 'open' were drawn as 'st / at / us' and
    'op / en'."""
    assert CHROMIUM is not None
    page = tmp_path / "status.html"
    # Every amount as long as a real one on a page seen here (an odd-sized proxied download).
    shown = re.sub(r"\b\d+(\.\d+)? BTT\b", "0.00411102294921875 BTT", fetched[2])
    phone = "<style>html{width:390px}</style></head>"
    page.write_text(shown.replace("</head>", phone).replace("</body>", SPLIT_WORDS + "</body>"))
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=390,844",
         "--virtual-time-budget=2000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    measured = re.search(r'data-split="([^"]*)"', dom.stdout)
    assert measured is not None, dom.stderr[-2000:]
    assert json.loads(html.unescape(measured[1])) == {"split": [], "wide": False}
