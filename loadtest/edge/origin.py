"""The loopback origin of the edge benchmark, a child process of its own
(``python -m loadtest.edge.origin PAGES_DIR``): ``/blob/{n}?salt=S``, n bytes of blob S
streamed as made, and ``/pages/{name}``, the files of PAGES_DIR with their content types."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from loadtest.edge.bench import PAGE_SUFFIXES, PAGE_TYPES
from loadtest.harness.blobs import blob_range
from loadtest.harness.rows import KIB

PIECE = 64 * KIB  # the blob's write size (what a socket read hands over)


async def serve(pages: Path) -> None:
    from aiohttp import web

    async def blob(request: web.Request) -> web.StreamResponse:
        total, salt = int(request.match_info["n"]), int(request.query.get("salt", "0"))
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = total
        await response.prepare(request)
        for sent in range(0, total, PIECE):
            await response.write(blob_range(sent, min(PIECE, total - sent), salt))
        await response.write_eof()
        return response

    async def page(request: web.Request) -> web.Response:
        path = pages / request.match_info["name"]
        if path.parent != pages or path.name.startswith(".") or not path.is_file():
            raise web.HTTPNotFound()
        kind = PAGE_TYPES.get(PAGE_SUFFIXES.get(path.suffix, ""), "application/octet-stream")
        return web.Response(body=path.read_bytes(), headers={"Content-Type": kind})

    app = web.Application()
    app.add_routes([web.get("/blob/{n:[0-9]+}", blob), web.get("/pages/{name}", page)])
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=75.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, bound = runner.addresses[0][:2]
    sys.stdout.write(json.dumps({"listening": f"http://{host}:{bound}"}) + "\n")
    sys.stdout.flush()
    stop, loop = asyncio.Event(), asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1])))
