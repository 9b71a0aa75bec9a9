"""The browser path with curl -x: bytes, HEAD, Range, errors, limits, memory, settlement."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import time
from pathlib import Path

import aiohttp

from requester.ledger_client import LedgerClient
from requester.protocol import BTT_LOCAL, parse_amount
from tests.origin_server import pattern
from tests.processes import Running, start_edge, start_proxy
from tests.proxy.conftest import api, bearer, curl, token
from tests.sdk.conftest import PASSPHRASE, Home, fund_edges, make_home

CHUNK = 256 * 1024


def test_get_streams_the_origin_bytes(proxy: Running, origin: Running) -> None:
    size = 3 * CHUNK + 11
    got = curl("-x", proxy.url, f"{origin.url}/bytes/{size}?t=px-get", "-D", "-")
    head, _, body = got.stdout.partition(b"\r\n\r\n")
    assert got.returncode == 0, got.stderr
    assert head.startswith(b"HTTP/1.1 200")
    assert b"via: 1.1 atlas" in head.lower()
    assert body == pattern(0, size)


def test_head_and_origin_errors(proxy: Running, origin: Running) -> None:
    head = curl("-x", proxy.url, "-I", f"{origin.url}/bytes/{CHUNK}?t=px-head")
    assert b"200" in head.stdout.split(b"\r\n")[0]
    assert f"content-length: {CHUNK}".encode() in head.stdout.lower()
    missing = curl("-x", proxy.url, "-w", "%{http_code}", "-o", "/dev/null",
                   f"{origin.url}/status/404?t=px-404")  # fmt: skip
    assert missing.stdout == b"404"
    moved = curl("-x", proxy.url, f"{origin.url}/redirect/2?t=px-redirect", "-w", "%{http_code}")
    assert moved.stdout.endswith(b"200")


def test_range_requests(proxy: Running, origin: Running) -> None:
    size = 5 * CHUNK
    url = f"{origin.url}/bytes/{size}?t=px-range"
    whole = pattern(0, size)
    for spec, first, last in (("1000-1999", 1000, 1999), (f"{CHUNK * 3 - 5}-", CHUNK * 3 - 5,
                              size - 1), ("-300", size - 300, size - 1)):  # fmt: skip
        got = curl("-x", proxy.url, "-H", f"Range: bytes={spec}", "-D", "-", url)
        head, _, body = got.stdout.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 206"), head
        assert f"content-range: bytes {first}-{last}/{size}".encode() in head.lower()
        assert body == whole[first : last + 1]
    beyond = curl("-x", proxy.url, "-H", f"Range: bytes={size}-", "-w", "%{http_code}",
                  "-o", "/dev/null", url)  # fmt: skip
    assert beyond.stdout == b"416"


def test_a_cached_one_chunk_object_whole_ranged_and_head(proxy: Running, origin: Running) -> None:
    """A sealed one-chunk content is answered by the proxy port itself (proxy/in_place.py):
    the same bytes and headers as a streamed one, Range and HEAD included."""
    size = 16 * 1024 + 7
    url = f"{origin.url}/bytes/{size}?max-age=600&t=px-one-chunk"
    first = curl("-x", proxy.url, "-D", "-", url)
    ids = set()
    for _ in range(2):  # the first may be a MISS (not sealed yet); then HITs, sealed
        got = curl("-x", proxy.url, "-D", "-", url)
        head, _, body = got.stdout.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        lowered = head.lower()
        assert b"via: 1.1 atlas" in lowered and b"accept-ranges: bytes" in lowered
        assert f"content-length: {size}".encode() in lowered
        assert body == pattern(0, size)
        ids.add(lowered.split(b"x-atlas-content-id: ")[1].split(b"\r\n")[0])
    assert len(ids) == 1 and ids.pop() in first.stdout.lower()  # the edge's cached content
    for spec, low, high in (("100-199", 100, 199), (f"{size - 5}-", size - 5, size - 1),
                            ("-300", size - 300, size - 1)):  # fmt: skip
        got = curl("-x", proxy.url, "-H", f"Range: bytes={spec}", "-D", "-", url)
        head, _, body = got.stdout.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 206"), head
        assert f"content-range: bytes {low}-{high}/{size}".encode() in head.lower()
        assert body == pattern(low, high - low + 1)
    beyond = curl("-x", proxy.url, "-H", f"Range: bytes={size}-", "-D", "-", "-o", "/dev/null",
                  "-w", "%{http_code}", url)  # fmt: skip
    assert beyond.stdout.endswith(b"416") and f"bytes */{size}".encode() in beyond.stdout
    head_only = curl("-x", proxy.url, "-I", url)
    assert head_only.stdout.startswith(b"HTTP/1.1 200")
    assert f"content-length: {size}".encode() in head_only.stdout.lower()


def test_methods_other_than_get_and_head_are_refused(proxy: Running, origin: Running) -> None:
    posted = curl("-x", proxy.url, "-X", "POST", "-d", "x", "-w", "%{http_code}",
                  f"{origin.url}/bytes/10")  # fmt: skip
    assert posted.stdout.endswith(b"405")


def test_status_page_and_pac(proxy: Running, proxy_home: Home, tmp_path: Path) -> None:
    locked = curl("-x", proxy.url, "-w", "\n%{http_code}", "http://atlas.proxy/")
    assert locked.stdout.endswith(b"\n401"), locked.stdout  # the status page needs the token
    jar = str(tmp_path / "cookies")
    page = curl("-x", proxy.url, "-L", "-c", jar, "-b", jar,
                f"http://atlas.proxy/?token={token(proxy_home)}")  # fmt: skip
    assert b"Atlas proxy" in page.stdout and b"Spent today" in page.stdout
    again = curl("-x", proxy.url, "-b", jar, "http://atlas.proxy/status.json")  # the cookie
    assert json.loads(again.stdout)["mode"] == "tunnel"
    pac = curl(f"{api(proxy)}/proxy.pac")
    assert f"PROXY {proxy.url.removeprefix('http://')}".encode() in pac.stdout


def test_failures_are_pages_a_person_understands(
    origin: Running, ledger: Running, tmp_path: Path
) -> None:
    guarded = start_edge(tmp_path / "guarded", ledger.url, "--free-mib", "0")
    try:
        guarded.stop()
        # an edge that is not there
        home = make_home(tmp_path / "h", [guarded.url], ledger.url)
        proxy = start_proxy(home.path, env={"ATLAS_PASSPHRASE": PASSPHRASE})
        try:
            page = curl("-x", proxy.url, "-w", "\n%{http_code}", f"{origin.url}/bytes/10")
            assert page.stdout.endswith(b"502")
            assert b"No Atlas edge could be reached" in page.stdout
            assert b"Traceback" not in page.stdout
        finally:
            proxy.stop()
    finally:
        guarded.stop()


def test_a_body_the_origin_breaks_off_is_a_page_naming_the_cut(
    proxy: Running, origin: Running
) -> None:
    """Before: "No provider could deliver this page" (504 no_providers). (Runs before
    test_overload_is_answered_503_with_retry_after, whose second proxy on the same home
    pays on the same channels and leaves this one's channel state behind.)"""
    page = curl("-x", proxy.url, "-w", "\n%{http_code}", f"{origin.url}/short/{CHUNK}?t=px-cut")
    assert page.stdout.endswith(b"\n502"), page.stdout
    assert b"The site broke off its response" in page.stdout
    assert b"origin_truncated" in page.stdout and b"reported by the Atlas edge" in page.stdout


def test_blocked_address_and_spend_limit_pages(
    origin: Running, ledger: Running, edges: list[Running], tmp_path: Path
) -> None:
    from tests.processes import start

    strict = start(["edge", "serve", "--host", "127.0.0.1", "--port", "0",
                    "--data-dir", str(tmp_path / "strict"), "--ledger", ledger.url])  # fmt: skip
    home = make_home(tmp_path / "h2", [strict.url], ledger.url)
    proxy = start_proxy(home.path, env={"ATLAS_PASSPHRASE": PASSPHRASE})
    try:
        page = curl("-x", proxy.url, "-w", "\n%{http_code}", f"{origin.url}/bytes/10")
        assert page.stdout.endswith(b"403"), page.stdout
        assert b"This address is blocked" in page.stdout
    finally:
        proxy.stop()
        strict.stop()
    capped = make_home(tmp_path / "h3", [e.url for e in edges], ledger.url)
    proxy = start_proxy(capped.path, "--max-per-request", "0.0001",
                        env={"ATLAS_PASSPHRASE": PASSPHRASE})  # fmt: skip
    try:  # one chunk costs 0.00025 BTT: the very first payment passes the limit
        page = curl("-x", proxy.url, "-w", "\n%{http_code}", f"{origin.url}/bytes/{CHUNK}?t=lim1")
        assert page.stdout.endswith(b"402"), page.stdout
        assert b"Spending limit reached" in page.stdout and b"--max-per-request" in page.stdout
    finally:
        proxy.stop()
    proxy = start_proxy(capped.path, "--max-per-request", "0.0005",
                        env={"ATLAS_PASSPHRASE": PASSPHRASE})  # fmt: skip
    try:  # two chunks fit, then the limit stops the request: a 402 page, or a cut if
        # the headers already went out; never more spent than the limit
        cut = curl("-x", proxy.url, "-o", "/dev/null", "-w", "%{http_code}",
                   f"{origin.url}/bytes/{8 * CHUNK}?t=lim2")  # fmt: skip
        assert cut.returncode == 18 or cut.stdout == b"402", (cut.returncode, cut.stdout)
        status = json.loads(curl(*bearer(capped), f"{api(proxy)}/status.json").stdout)
        assert parse_amount(status["spent_today"], BTT_LOCAL) <= parse_amount("0.0005", BTT_LOCAL)
    finally:
        proxy.stop()


def test_large_download_streams_in_bounded_memory(proxy: Running, origin: Running) -> None:
    size = 200 * 1024 * 1024
    pid = proxy.proc.pid
    base = _rss(pid)
    exe = ["curl", "-sS", "-x", proxy.url, f"{origin.url}/bytes/{size}?t=px-big"]
    sink = subprocess.Popen(exe, stdout=subprocess.PIPE)
    assert sink.stdout is not None
    digest, got, peak = hashlib.sha256(), 0, base
    last = time.monotonic()
    while block := sink.stdout.read(1 << 20):
        digest.update(block)
        got += len(block)
        if time.monotonic() - last > 0.2:
            peak, last = max(peak, _rss(pid)), time.monotonic()
    assert sink.wait() == 0
    assert got == size
    expected = hashlib.sha256()
    for offset in range(0, size, 1 << 22):
        expected.update(pattern(offset, min(1 << 22, size - offset)))
    assert digest.digest() == expected.digest()
    assert peak - base < 64 * 1024 * 1024, f"proxy RSS grew {(peak - base) >> 20} MiB"


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def test_edges_were_paid_what_the_proxy_spent(
    origin: Running, ledger: Running, tmp_path: Path
) -> None:
    """After the run (edges redeem on SIGTERM), the ledger holds what the proxy's wallet spent."""
    own = [start_edge(tmp_path / f"e{i}", ledger.url, "--free-mib", "0") for i in range(2)]
    asyncio.run(fund_edges(ledger.url, [e.url for e in own]))
    home = make_home(tmp_path / "home", [e.url for e in own], ledger.url)
    proxy = start_proxy(home.path, env={"ATLAS_PASSPHRASE": PASSPHRASE})
    try:
        for n in (1, 2, 3):
            got = curl("-x", proxy.url, "-o", "/dev/null", "-w", "%{http_code}",
                       f"{origin.url}/bytes/{n * 5 * CHUNK}?t=px-paid{n}")  # fmt: skip
            assert got.stdout == b"200"
        status = json.loads(curl(*bearer(home), f"{api(proxy)}/status.json").stdout)
    finally:
        proxy.stop()
        for edge in own:
            assert edge.stop() == 0  # SIGTERM: redeem, then exit
    spent = parse_amount(status["spent_today"], BTT_LOCAL)
    channels = asyncio.run(_channels(ledger.url, home))
    assert spent > 0 and channels
    assert sum(int(c["redeemed"]) for c in channels) == spent
    assert all(c["payer"] == str(home.address) for c in channels)
    served = [p for r in status["recent"] for p in r["providers"].values() if p["chunks"]]
    assert served and all(p["lane"] == "paid" and int(p["price_per_mib_paid"]) for p in served)


async def _channels(ledger: str, home: Home) -> list[dict[str, str]]:
    async with aiohttp.ClientSession() as session:
        return await LedgerClient(ledger, session).channels(home.address)


def test_overload_is_answered_503_with_retry_after(proxy_home: Home, origin: Running) -> None:
    busy = start_proxy(proxy_home.path, "--max-transfers", "1",
                       env={"ATLAS_PASSPHRASE": PASSPHRASE})  # fmt: skip
    try:
        slow = subprocess.Popen(
            ["curl", "-sS", "-x", busy.url, "-o", "/dev/null",
             f"{origin.url}/slow/{2 * CHUNK}?delay=0.05&t=busy"],
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                status = json.loads(curl(*bearer(proxy_home), f"{api(busy)}/status.json").stdout)
                if status["requests"] >= 1:
                    break
                time.sleep(0.05)
            refused = curl("-x", busy.url, "-D", "-", "-o", "/dev/null",
                           f"{origin.url}/bytes/10?t=busy2")  # fmt: skip
            assert refused.stdout.startswith(b"HTTP/1.1 503"), refused.stdout[:200]
            assert b"retry-after: 1" in refused.stdout.lower()
        finally:
            assert slow.wait(60) == 0
    finally:
        busy.stop()
