"""Running an aiohttp app as a process: explicit limits, a ready line, clean stop.

Servers bind the port they are given (0 picks a free one) and print one JSON
line ``{"listening": "http://HOST:PORT"}`` on stdout once they accept
connections, which is how ``atlas up`` and the tests learn where they are.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from aiohttp import web

from requester.guarded_server import GuardedSite
from requester.listener_limits import DEFAULT_LIMITS, ListenerLimits
from requester.stop_orders import StopOrders

KEEPALIVE_TIMEOUT = 75.0
"""Idle keep-alive connections close after this (aiohttp's default is an hour)."""
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 100
HANDLER_OPTIONS: dict[str, object] = {
    "keepalive_timeout": KEEPALIVE_TIMEOUT, "max_line_size": MAX_LINE_SIZE,
    "max_field_size": MAX_FIELD_SIZE, "max_headers": MAX_HEADERS, "access_log": None,
}  # fmt: skip


async def serve(
    app: web.Application,
    host: str,
    port: int,
    on_bound: Callable[[web.Application, str], None] | None = None,
    *,
    stops_last: bool = False,
    limits: ListenerLimits = DEFAULT_LIMITS,
    ready_extra: Callable[[str], dict[str, object]] | None = None,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then run its cleanup and return.

    ``on_bound`` learns the URL actually bound (port 0 picks one) before the
    ready line is printed. Under ``atlas up`` the launcher's orders stop it too,
    and a ``stops_last`` server (the ledger) only those (requester/stop_orders.py).
    Connections obey ``limits`` (header timeout, per-address cap). ``ready_extra``
    adds keys to the ready line (the offline TRON node names its contracts there).
    """
    # Handlers go in before the ready line: a SIGTERM sent as soon as it is read must
    # still run the cleanup (an edge redeems its vouchers there), not kill the process.
    orders = StopOrders(stops_last=stops_last)
    runner = web.AppRunner(app, shutdown_timeout=5.0, access_log=None)
    await runner.setup()
    site = GuardedSite(runner, host, port, limits, **HANDLER_OPTIONS)
    await site.start()
    bound = runner.addresses[0]
    url_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    url = f"http://{url_host}:{bound[1]}"
    if on_bound is not None:
        on_bound(app, url)
    extra = ready_extra(url) if ready_extra is not None else {}
    sys.stdout.write(json.dumps({"listening": url, **extra}) + "\n")
    sys.stdout.flush()
    try:
        await orders.wait()
    finally:
        await runner.cleanup()
