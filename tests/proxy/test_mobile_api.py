"""The mobile API, ``GET /v1/fetch?url=URL`` with a bearer token, driven by curl."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.origin_server import SITE_VIDEO_SIZE, pattern
from tests.processes import Running, start, start_proxy
from tests.proxy.conftest import api, bearer, curl, token
from tests.sdk.conftest import PASSPHRASE, Home, make_home

CHUNK = 256 * 1024


def fetch_url(proxy: Running, url: str) -> str:
    return f"{api(proxy)}/v1/fetch?url={quote(url, safe='')}"


def test_token_is_required(proxy: Running, origin: Running) -> None:
    target = fetch_url(proxy, f"{origin.url}/bytes/10")
    for auth in ([], ["-H", "Authorization: Bearer wrong"], ["-H", "Authorization: Basic x"]):
        got = curl(*auth, "-w", "\n%{http_code}", target)
        body, _, status = got.stdout.rpartition(b"\n")
        assert status == b"401"
        assert json.loads(body)["type"].endswith("/unauthorized")


def test_fetch_and_range(proxy: Running, proxy_home: Home, origin: Running) -> None:
    size = 4 * CHUNK + 3
    target = fetch_url(proxy, f"{origin.url}/bytes/{size}?t=mobile")
    auth = f"Authorization: Bearer {token(proxy_home)}"
    whole = curl("-H", auth, target)
    assert whole.stdout == pattern(0, size)
    part = curl("-H", auth, "-H", f"Range: bytes={CHUNK - 2}-{CHUNK + 9}", "-D", "-", target)
    head, _, body = part.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 206")
    assert f"content-range: bytes {CHUNK - 2}-{CHUNK + 9}/{size}".encode() in head.lower()
    assert body == pattern(CHUNK - 2, 12)


def test_seeking_in_an_uncacheable_video_fetches_only_the_ranges(
    proxy: Running, proxy_home: Home, origin: Running
) -> None:
    """The video has no freshness and no validator, so edges cannot reuse it: after the first
    request, each Range is fetched from the origin alone (one chunk at the edge, not 80)."""
    target = fetch_url(proxy, f"{origin.url}/site/video.bin?t=seek")
    auth = f"Authorization: Bearer {token(proxy_home)}"
    for first in (0, 5_000_000, 12_345_678):
        last = first + 65535
        got = curl("-H", auth, "-H", f"Range: bytes={first}-{last}", "-D", "-", target)
        head, _, body = got.stdout.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 206"), head
        assert f"content-range: bytes {first}-{last}/{SITE_VIDEO_SIZE}".encode() in head.lower()
        assert body == pattern(first, 65536)
        cid = next(
            line.split(b":", 1)[1].strip().decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"x-atlas-content-id:")
        )
        held = [json.loads(curl(f"{edge}/v1/content/{cid}").stdout) for edge in proxy_home.edges]
        chunks = max(int(info.get("chunks_available") or 0) for info in held)
        if first:  # (the first request had the edge fetch the whole video, as before)
            assert chunks == 1, (first, chunks)


def test_bad_url_is_400(proxy: Running, proxy_home: Home) -> None:
    auth = f"Authorization: Bearer {token(proxy_home)}"
    for bad in ("notaurl", "ftp://example.com/x", ""):
        got = curl("-H", auth, "-w", "\n%{http_code}", f"{api(proxy)}/v1/fetch?url={quote(bad)}")
        body, _, status = got.stdout.rpartition(b"\n")
        assert status == b"400", bad
        assert json.loads(body)["type"].endswith("/bad_url")


def test_blocked_address_is_403(origin: Running, ledger: Running, tmp_path: Path) -> None:
    strict = start(["edge", "serve", "--host", "127.0.0.1", "--port", "0",
                    "--data-dir", str(tmp_path / "strict"), "--ledger", ledger.url])  # fmt: skip
    home = make_home(tmp_path / "h", [strict.url], ledger.url)
    proxy = start_proxy(home.path, env={"ATLAS_PASSPHRASE": PASSPHRASE})
    try:
        got = curl("-H", f"Authorization: Bearer {token(home)}", "-w", "\n%{http_code}",
                   fetch_url(proxy, f"{origin.url}/bytes/10"))  # fmt: skip
        body, _, status = got.stdout.rpartition(b"\n")
        assert status == b"403"
        problem = json.loads(body)
        assert problem["status"] == 403 and "127.0.0.1" in problem["detail"]
    finally:
        proxy.stop()
        strict.stop()


@pytest.mark.parametrize(("route", "code"), [("short", "origin_truncated"),
                                             ("reset", "origin_reset")])  # fmt: skip
def test_a_body_the_origin_breaks_off_is_named_with_the_edges_problem(
    route: str, code: str, proxy: Running, proxy_home: Home, origin: Running
) -> None:
    """The origin declares a chunk and sends half of it, then closes or resets: the edge says
    ``502 origin_truncated`` / ``origin_reset`` for the content, and the app gets that code
    and the edge's words. Before: ``504 no_providers``, "No provider could deliver this page"."""
    target = fetch_url(proxy, f"{origin.url}/{route}/{CHUNK}?t=mobile-{route}")
    got = curl(*bearer(proxy_home), "-w", "\n%{http_code}", "-D", "-", target)
    head, _, rest = got.stdout.partition(b"\r\n\r\n")
    body, _, status = rest.rpartition(b"\n")
    assert status == b"502", got.stdout
    assert b"content-type: application/problem+json" in head.lower(), head
    problem = json.loads(body)
    assert problem["type"] == f"https://atlas.invalid/problems/{code}", problem
    assert problem["status"] == 502
    assert "reported by the Atlas edge http://127.0.0.1:" in problem["detail"], problem
