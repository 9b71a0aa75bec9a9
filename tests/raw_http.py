"""Raw HTTP exchanges for what no HTTP client library will send: request heads over the
limits, broken framing, bytes that are not HTTP. Every Atlas aiohttp server must answer
them with a JSON problem (issue 13, defect 11), or close the connection."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from yarl import URL

PROBLEM_JSON = "application/problem+json"
REPLY_TIMEOUT = 10.0

HEAD_STATUS = {"request_head_too_large": 431, "bad_http_request": 400}
"""The status each problem code of :data:`BAD_HEADS` comes with."""
BAD_HEADS: list[tuple[str, bytes, str]] = [
    ("long-header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n",
     "request_head_too_large"),
    ("long-request-line", b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     "request_head_too_large"),
    ("too-many-headers",
     b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
     "request_head_too_large"),
    ("content-length-overflow",
     b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
     "bad_http_request"),
    ("bad-chunk-size",
     b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
     "bad_http_request"),
    ("tls-on-http", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40) + b"\r\n\r\n",
     "bad_http_request"),
    ("http-9.9", b"GET /healthz HTTP/9.9\r\n\r\n", "bad_http_request"),
]  # fmt: skip
"""``(id, bytes, problem code)``: request heads aiohttp's parser refuses before any handler."""


async def exchange(url: str, data: bytes) -> bytes:
    """Send ``data`` on a new connection to ``url``'s host and port; what comes back."""
    target = URL(url)
    assert target.host is not None and target.port is not None
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(REPLY_TIMEOUT):
            return await reader.read()
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


def problem_of(reply: bytes) -> tuple[int, dict[str, Any]]:
    """The status and JSON problem of a raw HTTP reply (asserting it is one)."""
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    assert fields.get("content-type", "").startswith(PROBLEM_JSON), reply[:400]
    document = json.loads(body)
    assert document["status"] == status, document
    return status, document
