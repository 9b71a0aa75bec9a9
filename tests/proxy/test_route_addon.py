"""Where the proxy port sends a browser's GET (proxy/route_addon.py): a page asset is answered
in place, and the headers that aim a request at the relay are set only when it goes there.
Whatever the request carries (a body mitmproxy streams before its ``request`` hook, a body it
holds, a relay header of the browser's own), the answer is Atlas's: verified, through the
edges, never the origin's straight."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.origin_server import pattern
from tests.processes import Running
from tests.proxy.conftest import curl

SMALL = 3000
LARGE = 300 * 1024


@pytest.mark.parametrize(
    ("size", "extra"),
    [
        (SMALL, []),  # answered in place
        (LARGE, []),  # handed to the relay, opened
        (SMALL, ["--data-binary", "@BODY"]),  # a body mitmproxy holds (Content-Length)
        (SMALL, ["--data-binary", "@BODY", "-H", "Transfer-Encoding: chunked"]),  # streamed
        (SMALL, ["-H", "X-Atlas-Opened: not-a-token", "-H", "X-Atlas-Url: http://x.test/"]),
    ],
    ids=["in-place", "relay", "held-body", "streamed-body", "own-relay-headers"],
)
def test_every_get_is_answered_through_atlas(
    proxy: Running, origin: Running, tmp_path: Path, size: int, extra: list[str]
) -> None:
    body = tmp_path / "body"
    body.write_bytes(b"b" * (200 * 1024))  # over the 64 KiB mitmproxy streams from
    extra = [arg.replace("@BODY", f"@{body}") for arg in extra]
    url = f"{origin.url}/bytes/{size}?t=route-{size}-{len(extra)}-{tmp_path.name}"
    for _ in range(2):  # the second: its head is fresh at the edge, sealed, reused
        got = curl("-x", proxy.url, "-X", "GET", *extra, url, "-D", "-")
        head, _, received = got.stdout.partition(b"\r\n\r\n")
        assert got.returncode == 0, got.stderr
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"via: 1.1 atlas" in head.lower()
        assert b"x-atlas-content-id:" in head.lower()
        assert received == pattern(0, size)
