"""A raw CONNECT client for tunnel tests, written against the documented contract.

No HTTP library: the tests must see exactly the bytes the edge answers on its
tunnel port, and keep the socket after ``200 Connection established``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from tests.edge.edge_client import request


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    reader: asyncio.StreamReader = field(repr=False)
    writer: asyncio.StreamWriter = field(repr=False)

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/problem+json", self.headers
        assert self.headers["connection"] == "close", self.headers
        doc: dict[str, Any] = json.loads(self.body)
        assert doc["status"] == self.status, doc
        return doc

    def code(self) -> str:
        return str(self.problem()["type"]).rsplit("/", 1)[1]


UNIT = 64 * 1024
"""An edge's default tunnel unit."""


async def echo_through(tunnel: Reply, data: bytes) -> bytes:
    """Send ``data`` into the tunnel while reading the echo back; return what came back."""

    async def send() -> None:
        tunnel.writer.write(data)
        await tunnel.writer.drain()

    async def receive() -> bytes:
        got = bytearray()
        while len(got) < len(data):
            piece = await tunnel.reader.read(1 << 16)
            assert piece, f"tunnel closed after {len(got)} bytes"
            got += piece
        return bytes(got)

    async with asyncio.timeout(20), asyncio.TaskGroup() as tasks:
        tasks.create_task(send())
        received = tasks.create_task(receive())
    return received.result()


def new_id() -> str:
    return secrets.token_hex(16)


def connect_head(target: str, tunnel_id: str, voucher: str | None = None) -> bytes:
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}", f"Atlas-Tunnel: {tunnel_id}"]
    if voucher is not None:
        lines.append(f"Atlas-Voucher: {voucher}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def send_head(tunnel_url: str, head: bytes) -> Reply:
    """Send ``head`` to the tunnel port; read the answer's head (and body unless 200)."""
    url = URL(tunnel_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(head)
    async with asyncio.timeout(15):
        raw = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = raw.decode("ascii").split("\r\n")[:-2]
        version, status, _ = status_line.split(" ", 2)
        assert version == "HTTP/1.1", status_line
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        body = b""
        if status != "200":
            body = await reader.readexactly(int(headers["content-length"]))
            assert await reader.read() == b"", "the edge closes after a refusal"
            writer.close()
    return Reply(int(status), headers, body, reader, writer)


async def connect(tunnel_url: str, target: str, tunnel_id: str,
                  voucher: str | None = None) -> Reply:  # fmt: skip
    return await send_head(tunnel_url, connect_head(target, tunnel_id, voucher))


@asynccontextmanager
async def opened(tunnel_url: str, target: str, tunnel_id: str,
                 voucher: str | None = None) -> AsyncIterator[Reply]:  # fmt: skip
    """An established tunnel; on the way out, half-close it and wait until the edge has
    closed it (the echo target hangs up on EOF), so it no longer counts as open."""
    reply = await connect(tunnel_url, target, tunnel_id, voucher)
    assert reply.status == 200, (reply.status, reply.body)
    try:
        yield reply
    finally:
        with contextlib.suppress(OSError, TimeoutError):
            if not reply.writer.is_closing():
                reply.writer.write_eof()
            async with asyncio.timeout(5):
                while await reply.reader.read(1 << 16):
                    pass
        reply.writer.close()


async def status(session: aiohttp.ClientSession, edge: str, tunnel_id: str) -> dict[str, Any]:
    async with session.get(f"{edge}/v1/tunnels/{tunnel_id}") as r:
        doc: dict[str, Any] = await r.json(content_type=None)
        assert r.status == 200, doc
        return doc


async def pay(session: aiohttp.ClientSession, edge: str, tunnel_id: str, voucher: str | None,
              units: int | str = 1) -> tuple[int, bytes, dict[str, str]]:  # fmt: skip
    headers = {"Atlas-Voucher": voucher} if voucher is not None else {}
    return await request(
        session, "POST", f"{edge}/v1/tunnels/{tunnel_id}/pay?units={units}", headers=headers
    )


async def open_tunnel(session: aiohttp.ClientSession, edge: str, tunnel_id: str, target: str,
                      voucher: str | None = None) -> tuple[int, bytes, dict[str, str]]:  # fmt: skip
    """``POST /v1/tunnels/{id}/open?target=...``: the edge connects and charges first."""
    headers = {"Atlas-Voucher": voucher} if voucher is not None else {}
    return await request(session, "POST", f"{edge}/v1/tunnels/{tunnel_id}/open",
                         params={"target": target}, headers=headers)  # fmt: skip


async def tunnel_info(session: aiohttp.ClientSession, edge: str) -> tuple[str, int]:
    """The edge's tunnel URL and the price of one unit."""
    async with session.get(f"{edge}/v1/info") as r:
        info = await r.json()
    async with session.get(f"{edge}/v1/tunnel/quote") as r:
        quote = await r.json()
    return info["tunnel"], int(quote["price"])


async def wait_status(session: aiohttp.ClientSession, edge: str, tunnel_id: str,
                      key: str, value: object, within: float = 5.0) -> dict[str, Any]:  # fmt: skip
    """Poll the tunnel's status until ``key`` has ``value``."""
    async with asyncio.timeout(within):
        while True:
            doc = await status(session, edge, tunnel_id)
            if doc[key] == value:
                return doc
            await asyncio.sleep(0.02)


def target_of(echo_url: str) -> str:
    return echo_url.removeprefix("tcp://")
