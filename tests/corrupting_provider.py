"""A misbehaving provider for tests: a reverse proxy in front of a real edge that
flips one byte in every Nth chunk it serves (``--every 0``: none), whether served
alone or in a chunk run, and with
``--lookup-delay S`` answers tracker look-ups (``/v1/providers/...``) S seconds late.
With ``--runs-only`` it counts and corrupts chunk run frames only; ``GET /__liar/stats``
says how many runs it relayed and how many frames of them it corrupted.

Run: ``python tests/corrupting_provider.py --upstream URL --every 10 --port 0``;
prints ``{"listening": URL}``. Chunk requests are forwarded without
``Accept-Encoding`` so the corrupted bytes are the chunk itself; the edge's
signed statement and price headers are passed through untouched, which is
exactly what a provider that serves a bad copy looks like.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import aiohttp
from aiohttp import web

from requester.protocol.chunk_run import CHUNK, FRAME_HEADER_SIZE, PREFIX_SIZE, frame_kind

HOP_BY_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "content-length",
              "accept-encoding", "content-encoding"}  # fmt: skip


def create_app(upstream: str, every: int, lookup_delay: float = 0.0,
               runs_only: bool = False) -> web.Application:  # fmt: skip
    state = {"served": 0, "runs": 0, "corrupted_in_runs": 0}

    async def forward(request: web.Request) -> web.Response:
        session: aiohttp.ClientSession = request.app["session"]
        if request.path.startswith("/v1/providers/"):
            await asyncio.sleep(lookup_delay)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with session.request(
            request.method, upstream + request.path_qs, headers=headers,
            data=await request.read(), auto_decompress=False,
        ) as resp:  # fmt: skip
            body = await resp.read()
            out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP}
            status = resp.status
        chunk = request.path.startswith("/v1/chunk/") and not runs_only
        if every and chunk and status == 200 and body:
            state["served"] += 1
            if state["served"] % every == 0:
                body = bytes([body[0] ^ 0xFF]) + body[1:]
        if every and request.path.startswith("/v1/run/") and status == 200:
            state["runs"] += 1
            body = _corrupt_run(body, every, state)
        return web.Response(status=status, body=body, headers=out_headers)

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(state)

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app["session"] = aiohttp.ClientSession()
        yield
        await app["session"].close()

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/__liar/stats", stats)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def _corrupt_run(body: bytes, every: int, state: dict[str, int]) -> bytes:
    """A chunk run's frames (docs/protocol.md 13), each counted as a chunk served: the
    first body byte of every Nth flipped, headers and statements untouched."""
    out = bytearray(body)
    pos = 0
    while (
        pos + PREFIX_SIZE <= len(out) and frame_kind(bytes(out[pos : pos + PREFIX_SIZE])) == CHUNK
    ):
        wire_len = int.from_bytes(out[pos + 20 : pos + 24], "big")
        start = pos + FRAME_HEADER_SIZE
        state["served"] += 1
        if state["served"] % every == 0 and wire_len:
            out[start] ^= 0xFF
            state["corrupted_in_runs"] += 1
        pos = start + wire_len
    return bytes(out)


async def _main(upstream: str, every: int, port: int, lookup_delay: float,
                runs_only: bool) -> None:  # fmt: skip
    runner = web.AppRunner(create_app(upstream.rstrip("/"), every, lookup_delay, runs_only))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    print(json.dumps({"listening": f"http://127.0.0.1:{bound}"}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lookup-delay", type=float, default=0.0)
    parser.add_argument(
        "--runs-only", action="store_true", help="count and corrupt run frames only"
    )
    ns = parser.parse_args()
    try:
        asyncio.run(_main(ns.upstream, ns.every, ns.port, ns.lookup_delay, ns.runs_only))
    except KeyboardInterrupt:
        sys.exit(0)
