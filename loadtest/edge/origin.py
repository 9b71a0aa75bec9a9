"""The loopback origin of the edge benchmark, a child process of its own::

python -m loadtest.edge.origin --pages DIR
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from loadtest.edge.config import PAGE_SUFFIXES, PAGE_TYPES
from loadtest.harness.blobs import blob_range
from loadtest.harness.children import Proc, Processes, module_argv
from loadtest.harness.rows import KIB

PIECE = 64 * KIB  # the blob's write size (what a socket read hands over)


def run_origin(pages: Path) -> None:
    """A loopback origin: ``/blob/{n}?salt=S`` (streamed) and ``/pages/{name}`` (files)."""
    from aiohttp import web

    async def blob(request: web.Request) -> web.StreamResponse:
        total = int(request.match_info["n"])
        salt = int(request.query.get("salt", "0"))
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = total
        await response.prepare(request)
        sent = 0
        while sent < total:
            size = min(PIECE, total - sent)
            await response.write(blob_range(sent, size, salt))
            sent += size
        await response.write_eof()
        return response

    async def page(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if "/" in name or name.startswith("."):
            raise web.HTTPNotFound()
        path = pages / name
        if not path.is_file():
            raise web.HTTPNotFound()
        kind = PAGE_SUFFIXES.get(path.suffix, "")
        return web.Response(
            body=path.read_bytes(),
            headers={"Content-Type": PAGE_TYPES.get(kind, "application/octet-stream")},
        )

    async def main() -> None:
        app = web.Application()
        app.add_routes([web.get("/blob/{n:[0-9]+}", blob), web.get("/pages/{name}", page)])
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=75.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, bound = runner.addresses[0][:2]
        sys.stdout.write(json.dumps({"listening": f"http://{host}:{bound}"}) + "\n")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())


def start_origin(procs: Processes, pages: Path) -> Proc:
    """The origin in a child process, serving ``pages``."""
    return procs.start("origin", module_argv("loadtest.edge.origin", "--pages", str(pages)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=Path, required=True)
    run_origin(parser.parse_args().pages)
