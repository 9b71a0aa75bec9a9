"""A second test server for what tests/origin_server.py cannot do.

Run as its own process (``python tests/edge/odd_origin.py --port 0``); it
prints ``{"listening": URL}`` when ready.

Routes:
  /to?location=URL      302 to exactly that location (any host, port or scheme)
  /v1/content/{cid}     200 with a JSON list: a provider answering nonsense
  /v1/chunk/{cid}/{i}   502 origin_truncated, Atlas-Content-State: failed: a provider
                        claiming that content failed (true or not)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys

from aiohttp import web


async def redirect_route(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": request.query["location"]})


async def hostile_content_route(request: web.Request) -> web.Response:
    return web.json_response(["not", "a", "description"])


async def failed_chunk_route(request: web.Request) -> web.Response:
    problem = {
        "type": "https://atlas.invalid/problems/origin_truncated",
        "title": "origin truncated",
        "status": 502,
        "detail": "so this provider says",
    }
    return web.json_response(
        problem, status=502, content_type="application/problem+json",
        headers={"Atlas-Content-State": "failed"},
    )  # fmt: skip


async def _main(host: str, port: int) -> None:
    app = web.Application()
    app.add_routes(
        [
            web.get("/to", redirect_route),
            web.get("/v1/content/{cid}", hostile_content_route),
            web.get("/v1/chunk/{cid}/{index}", failed_chunk_route),
        ]
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound = runner.addresses[0]
    sys.stdout.write(json.dumps({"listening": f"http://{bound[0]}:{bound[1]}"}) + "\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.host, args.port))
