"""Whatever a client sends, an edge answers with a 4xx problem: never a 500, never a traceback.

A handful of hostile inputs for each endpoint a stranger can reach: fetch bodies,
chunk paths and payment headers, tracker announcements, and raw bytes that are
not HTTP at all. The edge runs inside the test with its stderr captured, so the
test also proves nothing it logged carries a traceback.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from requester.protocol import b64url_encode
from tests.edge.edge_client import Answer, fetch, get_chunk, request
from tests.processes import Running, start_edge
from tests.raw_http import BAD_HEADS, HEAD_STATUS, exchange, problem_of

PROBLEM = "application/problem+json"


def fetch_bodies(origin: str) -> list[bytes]:
    good = f"{origin}/bytes/10"
    objects: list[object] = [
        [], None, "https://example.org/", 5, {}, {"url": 5}, {"url": ""}, {"url": None},
        {"url": "http://[::1"}, {"url": "javascript:alert(1)"}, {"url": "file:///etc/passwd"},
        {"url": "http://user:pw@127.0.0.1/"}, {"url": "http://0x7f.1/"},
        {"url": "http://127.0.0.1:99999/"}, {"url": "http://" + "a" * 9000 + ".org/"},
        {"url": "http://ex\u00e4mple.org/"}, {"url": "http://127.0.0.1:0/"},
        {"url": good, "headers": []}, {"url": good, "headers": {"accept": 5}},
        {"url": good, "headers": {"accept": "x" * 5000}},
        {"url": good, "headers": {"accept": "text/html\r\nX-Injected: 1"}},
        {"url": good, "headers": {"user-agent": "a\x00b"}},
        {"url": good, "headers": {"accept-language": "\u00e9\ud800"}},
    ]  # fmt: skip
    return [json.dumps(o).encode() for o in objects] + [
        b"", b"not json", b"\xff\xfe\x00", b"1e999999", b"[" * 100_000, b'{"url": "\\ud800"}',
        b"{" + b'"a": 1, ' * 10_000 + b'"url": "x"}',
    ]  # fmt: skip


def chunk_paths(cid: str) -> list[str]:
    return [
        "/v1/chunk/zz/0", f"/v1/chunk/{cid}/-1", f"/v1/chunk/{cid}/1e3", f"/v1/chunk/{cid}/0x1",
        f"/v1/chunk/{cid}/%C2%B2", f"/v1/chunk/{cid}/%D9%A1", f"/v1/chunk/{cid}/99999999",
        f"/v1/chunk/{cid}/999999999999999999999", f"/v1/chunk/{cid}/%00",
        f"/v1/chunk/{cid}00/0", f"/v1/chunk/{cid[:-1]}%C3%A9/0", f"/v1/chunk/{cid}/0/extra",
        f"/v1/content/{cid}zz", "/v1/content/%00", f"/v1/providers/{cid}1", "/v1/nothing",
    ]  # fmt: skip


PAYMENT_HEADERS = [
    {"Atlas-Voucher": ""}, {"Atlas-Voucher": "===="}, {"Atlas-Voucher": "A" * 3000},
    {"Atlas-Voucher": b64url_encode(b"ATV\x01" + bytes(184))},
    {"Atlas-Voucher": b64url_encode(b"ATV\x01" + b"\xff" * 184)},
    {"Atlas-Voucher": b64url_encode(secrets.token_bytes(188))},
    {"Atlas-Channel": "zz"}, {"Atlas-Channel": ""}, {"Atlas-Channel": "ab" * 32},
    {"Atlas-Channel": "\u00e9" * 32}, {"Accept-Encoding": "zstd;q=nope, , ;;, zstd;q=0"},
]  # fmt: skip

ANNOUNCES: list[object] = [
    {}, [], {"records": "x"}, {"records": [1]}, {"records": ["!!"]},
    {"records": [b64url_encode(secrets.token_bytes(200))]}, {"records": ["A"] * 300},
    {"records": [b64url_encode(b"ATP\x01" + bytes(300))]},
]  # fmt: skip


def _checked(what: str, answer: Answer) -> None:
    """A 4xx JSON problem: the client's mistake, said so."""
    status, body, headers = answer
    assert 400 <= status < 500, (what, status, body[:300])
    assert headers.get("Content-Type", "").startswith(PROBLEM), (what, headers, body[:300])
    assert json.loads(body)["status"] == status, what


async def test_no_hostile_request_gets_a_500_or_a_traceback(
    tmp_path: Path, origin: Running, ledger: Running, capfd: pytest.CaptureFixture[str]
) -> None:
    edge = start_edge(tmp_path / "edge", ledger.url, "--free-mib", "0")  # stderr: captured
    try:
        async with aiohttp.ClientSession() as session:
            cid = (await fetch(session, edge.url, f"{origin.url}/bytes/10")).info["content_id"]
            for body in fetch_bodies(origin.url):
                answer = await request(session, "POST", f"{edge.url}/v1/fetch", data=body)
                _checked(repr(body[:80]), answer)
            for path in chunk_paths(cid):
                answer = await request(session, "GET", URL(edge.url + path, encoded=True))
                _checked(path, answer)
            for headers in PAYMENT_HEADERS:
                _checked(str(headers)[:80], await get_chunk(session, edge.url, cid, 0, headers))
            for announce in ANNOUNCES:
                answer = await request(session, "POST", f"{edge.url}/v1/announce", json=announce)
                _checked(str(announce)[:80], answer)
            for method, path in (("DELETE", "/v1/fetch"), ("PUT", "/"), ("GET", "/v1/fetch")):
                _checked(f"{method} {path}", await request(session, method, edge.url + path))
            replies = [await exchange(edge.url, data) for _, data, _ in BAD_HEADS]
            still = await request(session, "GET", f"{edge.url}/healthz")
    finally:
        stopped = edge.stop()
    assert stopped == 0
    for (what, _, code), reply in zip(BAD_HEADS, replies, strict=True):
        # Refused by the HTTP parser before any handler runs: a problem all the same.
        status, document = problem_of(reply)
        assert (status, document["type"].rsplit("/", 1)[-1]) == (HEAD_STATUS[code], code), what
    assert still[0] == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err, err[-3000:]
    assert "internal_error" not in err and "unhandled error" not in err, err[-3000:]


ODD_CACHE_CONTROL = [
    "max-age=" + "9" * 5000, "s-maxage=" + "9" * 5000, "max-age=\u00b2", "max-age=\u0661",
    "max-age=" + "9" * 30, "max-age=-5",
]  # fmt: skip


async def _odd_origin() -> web.AppRunner:
    """An origin that answers with the Cache-Control the query asks for."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="hello", headers={"Cache-Control": request.query["cc"]})

    app = web.Application()
    app.router.add_get("/page", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def test_an_origins_odd_cache_lifetimes_do_not_break_the_fetch(
    tmp_path: Path, ledger: Running, capfd: pytest.CaptureFixture[str]
) -> None:
    """int() of a 5000-digit max-age raised, and so did "\u00b2" (isdigit() but not ASCII)."""
    origin = await _odd_origin()
    edge = start_edge(tmp_path / "edge", ledger.url)
    try:
        base = f"http://127.0.0.1:{origin.addresses[0][1]}/page"
        async with aiohttp.ClientSession() as session:
            for value in ODD_CACHE_CONTROL:
                fetched = await fetch(session, edge.url, str(URL(base).with_query(cc=value)))
                assert fetched.head.status == 200, value[:40]
    finally:
        edge.stop()
        await origin.cleanup()
    assert "Traceback" not in capfd.readouterr().err
