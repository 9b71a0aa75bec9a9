"""Torrent content through a real edge process: ``POST /v1/fetch`` with a magnet or an
infohash, ``POST /v1/torrent`` with a .torrent file; the bytes come back as signed,
verified chunks like any URL, and a second request is served from the edge's store."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from requester.protocol import ContentVerifier, ManifestHead, TorrentSource, b64url_decode
from requester.settings import write_config
from tests.edge.edge_client import LIMIT, get_chunk
from tests.processes import Running, start_proxy
from tests.proxy.conftest import curl
from tests.torrent.conftest import expected_sha256, peer, torrent


async def post(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.post(url, **kwargs) as resp:
        return resp.status, await resp.json(content_type=None)


async def chunks_of(session: aiohttp.ClientSession, edge: str, info: dict[str, Any]) -> bytes:
    """Every chunk of the content, each verified against the edge-signed head."""
    head = ManifestHead.decode(b64url_decode(info["head"], LIMIT, "head"))
    verifier = ContentVerifier(head)
    out = bytearray()
    index = 0
    while True:
        status, body, headers = await get_chunk(session, edge, info["content_id"], index)
        if status == 416:
            return bytes(out)
        assert status == 200, (status, body[:300])
        verifier.verify_chunk(b64url_decode(headers["Atlas-Chunk"], 200, "chunk"), body)
        out += body
        index += 1


async def test_magnet_listing_then_file_then_cache(edge: Running, seeder: Running) -> None:
    record = torrent(seeder, "multi-hybrid")
    magnet = record["magnet"]
    async with aiohttp.ClientSession() as session:
        status, listing = await post(session, f"{edge.url}/v1/fetch", json={"url": magnet})
        assert status == 200, listing
        assert {(f["path"], f["size"]) for f in listing["files"]} == {
            (f["path"], f["size"]) for f in record["files"]
        }
        file = record["files"][0]
        status, info = await post(session, f"{edge.url}/v1/fetch",
                                  json={"url": magnet, "file": file["path"]})  # fmt: skip
        assert status == 200, info
        assert info["cache"] == "MISS"
        head = ManifestHead.decode(b64url_decode(info["head"], LIMIT, "head"))
        assert isinstance(head.source, TorrentSource) and head.source.path == file["path"]
        assert head.size_hint == file["size"]
        body = await chunks_of(session, edge.url, info)
        assert hashlib.sha256(body).hexdigest() == expected_sha256(file)
        status, again = await post(session, f"{edge.url}/v1/fetch",
                                   json={"url": magnet, "file": file["path"]})  # fmt: skip
        assert (status, again["cache"], again["content_id"]) == (200, "HIT", info["content_id"])


async def test_bare_infohash_with_a_peer_and_torrent_upload(edge: Running, seeder: Running) -> None:
    record = torrent(seeder, "single-v1")
    file = record["files"][0]
    host, port = peer(seeder)
    async with aiohttp.ClientSession() as session:
        ask = {"url": record["infohash_v1"], "file": file["path"], "peers": [f"{host}:{port}"]}
        status, info = await post(session, f"{edge.url}/v1/fetch", json=ask)
        assert status == 200, info
        body = await chunks_of(session, edge.url, info)
        assert hashlib.sha256(body).hexdigest() == expected_sha256(file)
        metainfo = await asyncio.to_thread(Path(record["torrent_file"]).read_bytes)
        status, uploaded = await post(
            session, f"{edge.url}/v1/torrent", data=metainfo,
            params={"file": file["path"], "peer": f"{host}:{port}"},
        )  # fmt: skip
        assert status == 200, uploaded
        assert uploaded["cache"] == "HIT"  # the same file, already in the store


async def test_refusals_are_clear(edge: Running, seeder: Running) -> None:
    record = torrent(seeder, "multi-hybrid")
    async with aiohttp.ClientSession() as session:
        missing = {"url": record["magnet"], "file": "no/such/file"}
        status, problem = await post(session, f"{edge.url}/v1/fetch", json=missing)
        assert status == 404 and "no/such/file" in problem["detail"], problem
        status, problem = await post(session, f"{edge.url}/v1/fetch",
                                     json={"url": "magnet:?xt=urn:btih:zz"})  # fmt: skip
        assert status == 400, problem
        outside = {"url": record["magnet"], "file": "../etc/passwd"}
        status, problem = await post(session, f"{edge.url}/v1/fetch", json=outside)
        assert status == 400, problem
        status, problem = await post(session, f"{edge.url}/v1/torrent", data=b"d4:spam")
        assert status == 400, problem


def test_atlas_fetch_of_a_magnet(edge: Running, seeder: Running, tmp_path: Path) -> None:
    record = torrent(seeder, "multi-v1")
    file = record["files"][-1]
    env = {**os.environ, "ATLAS_HOME": str(tmp_path / "home")}  # no wallet: free allowance
    out = tmp_path / "out.bin"
    done = subprocess.run(
        [sys.executable, "-m", "requester.cli", "fetch", record["magnet"], "--file",
         file["path"], "--edge", edge.url, "-o", str(out), "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["bytes"] == file["size"]
    assert hashlib.sha256(out.read_bytes()).hexdigest() == expected_sha256(file)
    listing = subprocess.run(
        [sys.executable, "-m", "requester.cli", "fetch", record["magnet"], "--edge", edge.url],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert listing.returncode == 1
    assert "--file PATH" in listing.stderr and file["path"] in listing.stderr


def test_browser_and_mobile_urls_for_a_torrent_file(
    edge: Running, seeder: Running, tmp_path: Path
) -> None:
    """``http://torrent.atlas/<infohash>/<path>`` through the proxy; ``url=magnet&file=``
    on the mobile API (no wallet here: the edge's free allowance pays)."""
    record = torrent(seeder, "single-v1")
    file = record["files"][0]
    home = tmp_path / "home"
    write_config(home, [edge.url], "")
    proxy = start_proxy(home)
    try:
        # the edge learns the torrent's peer from the magnet first (no DHT in tests);
        # from then on the infohash alone finds the file in its store
        warm = subprocess.run(
            ["curl", "-sS", "-X", "POST", f"{edge.url}/v1/fetch", "-H",
             "Content-Type: application/json", "-d",
             json.dumps({"url": record["magnet"], "file": file["path"]})],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        assert warm.returncode == 0 and b"content_id" in warm.stdout, warm.stdout
        url = f"http://torrent.atlas/{record['infohash_v1']}/{quote(file['path'])}"
        got = curl("-x", proxy.url, url)
        assert hashlib.sha256(got.stdout).hexdigest() == expected_sha256(file), got.stderr
        token = (home / "api_token").read_text().strip()
        api = f"{proxy.ready['api']}/v1/fetch?url={quote(record['magnet'], safe='')}"
        part = curl("-H", f"Authorization: Bearer {token}", "-H", "Range: bytes=10-19",
                    f"{api}&file={quote(file['path'])}")  # fmt: skip
        assert len(part.stdout) == 10
        whole = curl("-H", f"Authorization: Bearer {token}", api)  # one file: no file= needed
        assert hashlib.sha256(whole.stdout).hexdigest() == expected_sha256(file)
        multi = torrent(seeder, "multi-hybrid")["magnet"]
        listing = curl("-H", f"Authorization: Bearer {token}", "-w", "\n%{http_code}",
                       f"{proxy.ready['api']}/v1/fetch?url={quote(multi, safe='')}")  # fmt: skip
        assert listing.stdout.endswith(b"300") and b"data/a.bin" in listing.stdout
    finally:
        proxy.stop()
