"""The embedded ledger as its own process, with a clock the test moves forward.

Expiry tests used to open channels expiring in 3-4 s and wait for the ledger's
clock to pass them; on a loaded machine the steps meant to happen before the
expiry sometimes came after it (409 channel_expired). This runs the same app
as ``atlas ledger serve --faucet`` (``cdn_edge.ledger.app.create_app``, served
by ``cdn_edge.serving.serve``) with ``LedgerConfig.clock`` reading the real
time plus an offset, and one more route: ``POST /_test/clock {"to": T}`` moves
the clock forward to ``T`` (never back) and answers ``{"time": now}``.

Run: ``python tests/ledger/clocked_ledger.py --data-dir DIR``; prints
``{"listening": URL}`` when ready.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from aiohttp import web

from cdn_edge.ledger.app import LedgerConfig, create_app
from cdn_edge.serving import serve

CLOCK_PATH = "/_test/clock"


class MovableClock:
    """Real time plus an offset that only grows."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    async def move(self, request: web.Request) -> web.Response:
        target = (await request.json())["to"]
        self.offset += max(0.0, float(target) - self())
        return web.json_response({"time": int(self())})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    clock = MovableClock()
    app = create_app(LedgerConfig(data_dir=args.data_dir, faucet=True, clock=clock))
    app.router.add_post(CLOCK_PATH, clock.move)
    asyncio.run(serve(app, "127.0.0.1", 0))


if __name__ == "__main__":
    main()
