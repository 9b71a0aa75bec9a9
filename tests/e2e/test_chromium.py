"""A real browser through the proxy: Debian's headless Chromium loads a page with CSS, JS,
an image and a 20 MiB video-like file (fetched whole and by Range) from a local
origin, every byte through paid edges; the DOM and a screenshot are checked."""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.origin_server import SITE_VIDEO_SIZE, pattern
from tests.processes import Running, start_proxy
from tests.sdk.conftest import PASSPHRASE, Home, make_home

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium missing")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--proxy-bypass-list=<-loopback>"]  # fmt: skip


@pytest.fixture(scope="module")
def browser_proxy(tmp_path_factory: pytest.TempPathFactory, edges: list[Running],
                  ledger: Running) -> Iterator[tuple[Running, Home]]:  # fmt: skip
    home = make_home(tmp_path_factory.mktemp("browser"), [e.url for e in edges], ledger.url)
    running = start_proxy(home.path, "--max-per-request", "10",
                          env={"ATLAS_PASSPHRASE": PASSPHRASE})  # fmt: skip
    yield running, home
    running.stop()


def chromium(proxy: Running, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--proxy-server={proxy.url}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_page_renders_through_atlas(
    browser_proxy: tuple[Running, Home], origin: Running, tmp_path: Path
) -> None:
    proxy, _home = browser_proxy
    url = f"{origin.url}/site/index.html"
    dom = chromium(proxy, tmp_path / "p1", "--virtual-time-budget=30000", "--dump-dom", url)
    assert "Hello through Atlas" in dom.stdout, dom.stderr[-2000:]
    assert "js ran; color rgb(200, 30, 40)" in dom.stdout  # CSS and JS came through
    assert 'data-img="40x40"' in dom.stdout  # the image decoded
    video = pattern(0, SITE_VIDEO_SIZE)
    part = hashlib.sha256(video[1000000:1065536]).hexdigest()
    assert f"range 206 65536 {part}" in dom.stdout, re.findall(r"range[^<]*", dom.stdout)
    whole = hashlib.sha256(video).hexdigest()
    assert f"whole 200 {SITE_VIDEO_SIZE} {whole}" in dom.stdout, re.findall(
        r"whole[^<]*", dom.stdout
    )


def test_screenshot_is_not_blank(
    browser_proxy: tuple[Running, Home], origin: Running, tmp_path: Path
) -> None:
    proxy, _home = browser_proxy
    shot = tmp_path / "shot.png"
    done = chromium(proxy, tmp_path / "p2", "--window-size=640,480", "--virtual-time-budget=5000",
                    f"--screenshot={shot}", f"{origin.url}/site/index.html")  # fmt: skip
    assert shot.exists(), done.stderr[-2000:]
    colours = distinct_pixels(shot.read_bytes())
    assert colours > 3, f"screenshot has {colours} distinct pixel values"


def distinct_pixels(png: bytes) -> int:
    """Distinct RGB(A) values in a PNG (8-bit truecolour, as Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, channels = 8, b"", 0, 4
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        data = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, colour_type = struct.unpack(">I", data[:4])[0], data[9]
            channels = {2: 3, 6: 4}[colour_type]
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels + 1
    values: set[bytes] = set()
    for row in range(0, len(raw), stride * 8):  # every 8th row; filter byte skipped
        line = raw[row + 1 : row + stride]
        values.update(line[i : i + channels] for i in range(0, len(line), channels * 8))
    return len(values)
