"""A logging reverse proxy: forwards every request to ``--upstream`` and remembers it.

Put in front of a real edge's HTTP port, it lets a test see what the proxy asks
the edge and when (``GET /_log`` answers ``[[seconds, method, path], ...]``,
seconds on this process's monotonic clock, with ``now`` beside it).
Prints ``{"listening": URL}`` when ready.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time

import aiohttp
from aiohttp import web

UPSTREAM = web.AppKey("upstream", str)
SESSION = web.AppKey("session", aiohttp.ClientSession)
LOG = web.AppKey("log", list)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


async def show_log(request: web.Request) -> web.Response:
    return web.json_response({"now": time.monotonic(), "log": request.app[LOG]})


async def forward(request: web.Request) -> web.Response:
    request.app[LOG].append([time.monotonic(), request.method, request.path_qs])
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    async with request.app[SESSION].request(
        request.method, request.app[UPSTREAM] + request.path_qs, headers=headers,
        data=await request.read(), allow_redirects=False,
    ) as resp:  # fmt: skip
        body = await resp.read()
        kept = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP}
        return web.Response(status=resp.status, body=body, headers=kept)


async def main(upstream: str) -> None:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")
    app[LOG] = []
    app.router.add_get("/_log", show_log)
    app.router.add_route("*", "/{tail:.*}", forward)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        app[SESSION] = session
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        sys.stdout.write(json.dumps({"listening": f"http://127.0.0.1:{port}"}) + "\n")
        sys.stdout.flush()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args().upstream))
