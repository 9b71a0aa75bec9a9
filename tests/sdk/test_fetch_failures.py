"""Content whose origin fetch fails mid-body: the requester learns it at once.

The edge that fetched the content records the failure (``502 origin_truncated``,
``502 origin_reset``) and answers every chunk request for it with that problem,
marked ``Atlas-Content-State: failed``; replicas relay it. ``atlas fetch`` then
fails within seconds naming the cause, where it used to wait out its 60 s stall
timeout. A provider that merely claims the content failed is dropped, and cannot
stop a download the others serve.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from requester.download_progress import Progress
from tests.origin_server import pattern
from tests.processes import Running, start_program
from tests.sdk.conftest import Home
from tests.sdk.test_download import download

CHUNK = 256 * 1024
ODD_ORIGIN = Path(__file__).parents[1] / "edge" / "odd_origin.py"


@pytest.mark.parametrize(
    ("route", "code", "why"),
    [
        ("short", "origin_truncated", "closed the connection before the body's end"),
        ("reset", "origin_reset", "reset the connection in the middle of the body"),
    ],
)
def test_a_body_the_origin_breaks_off_fails_the_fetch_at_once(
    home: Home, origin: Running, tmp_path: Path, route: str, code: str, why: str
) -> None:
    out = tmp_path / "cut.bin"
    size = 40 * CHUNK  # half of it arrives: chunks past the cut can never exist
    # Generous: it takes about a second now; it took the 60 s stall timeout before.
    result = home.atlas("fetch", f"{origin.url}/{route}/{size}", "-o", str(out), timeout=20)
    assert result.returncode == 1, result.stderr
    assert f"the content failed: 502 {code}" in result.stderr, result.stderr
    assert why in result.stderr
    assert not out.exists()


async def test_a_provider_saying_the_content_failed_cannot_stop_the_others(
    home: Home, origin: Running, edges: list[Running]
) -> None:
    liar = start_program([sys.executable, str(ODD_ORIGIN)])
    try:
        size = 12 * CHUNK
        body, progress = await download(
            home, f"{origin.url}/bytes/{size}?t=claims", [edges[0].url, liar.url, edges[2].url]
        )
    finally:
        liar.stop()
    assert body == pattern(0, size)
    assert isinstance(progress, Progress)
    dropped = progress.providers[liar.url].dropped
    assert dropped == "the content failed: 502 origin_truncated: so this provider says"
