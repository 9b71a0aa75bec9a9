"""``GET /`` (the status page) and ``GET /metrics`` (Prometheus), and the dashboard's
parts the app opens and runs: history, recorder, health probes, the settlement clock."""

from __future__ import annotations

from collections.abc import Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from cdn_edge.dashboard.facts import gather
from cdn_edge.dashboard.health import PROBE_SECONDS, Health
from cdn_edge.dashboard.history import History
from cdn_edge.dashboard.page import render
from cdn_edge.dashboard.recorder import Recorder
from cdn_edge.edge_state import EDGE, Edge
from cdn_edge.settlement import SettleClock


@dataclass
class Dashboard:
    """The parts behind the page, on the app (``DASHBOARD``)."""

    recorder: Recorder
    health: Health
    settling: SettleClock


DASHBOARD = web.AppKey("dashboard", Dashboard)


async def start(app: web.Application, edge: Edge,
                stack: AsyncExitStack) -> tuple[Coroutine[Any, Any, None], ...]:  # fmt: skip
    """Open the dashboard of ``edge`` on ``app`` (closed with ``stack``); return its
    background jobs: the samples and the probes."""
    history = History(edge.config.data_dir / "history.sqlite3")
    await history.open()
    stack.push_async_callback(history.close)
    recorder = Recorder(history, edge.metrics, edge.payments, edge.content.stored_bytes,
                        edge.config.history_interval)  # fmt: skip
    app[DASHBOARD] = dash = Dashboard(recorder, Health.of(edge.config.trackers), SettleClock())
    every = min(PROBE_SECONDS, edge.config.history_interval)
    return dash.recorder.run(), dash.health.run(edge.ledger, every)


def add_routes(app: web.Application) -> None:
    app.add_routes([web.get("/", status_page), web.get("/metrics", metrics)])


async def status_page(request: web.Request) -> web.Response:
    edge, dash = request.app[EDGE], request.app[DASHBOARD]
    facts = await gather(edge, dash.recorder, dash.health, dash.settling)
    page = render(facts, edge.identity.node.node_id.hex(), str(edge.identity.payee.address),
                  edge.config.ledger)  # fmt: skip
    return web.Response(text=page, content_type="text/html",
                        headers={"Cache-Control": "no-store"})  # fmt: skip


async def metrics(request: web.Request) -> web.Response:
    """Prometheus's text format, or OpenMetrics (with ``# UNIT``) when the scraper asks."""
    edge, dash = request.app[EDGE], request.app[DASHBOARD]
    await gather(edge, dash.recorder, dash.health, dash.settling)
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return web.Response(body=encoder(edge.metrics.registry),
                        headers={"Content-Type": content_type})  # fmt: skip
