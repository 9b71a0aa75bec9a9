"""``atlas proxy``: the browser proxy (mitmproxy) and the mobile API on 127.0.0.1."""

from __future__ import annotations

import asyncio

import click

from proxy.service import ProxyConfig, run
from proxy.spending import Limits
from requester.cli.amounts import btt_or_none
from requester.cli.listener_options import listener_options
from requester.listener_limits import ListenerLimits
from requester.settings import ConfigError, atlas_home, load_settings


@click.command("proxy")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--api-port", default=8081, show_default=True, type=click.IntRange(0, 65535),
              help="port of the mobile API and status pages")  # fmt: skip
@click.option("--edge", "edges", multiple=True, help="edge URL (repeat); default from config")
@click.option("--ledger", help="ledger URL; default from config")
@click.option("--intercept", is_flag=True,
              help="open HTTPS with the proxy's CA and fetch it through edges too")  # fmt: skip
@click.option("--max-per-request", default="5", show_default=True, callback=btt_or_none,
              help="BTT one request may spend ('none' for no limit)")  # fmt: skip
@click.option("--max-transfers", default=64, show_default=True, type=click.IntRange(1, 10000),
              help="transfers at once; more are answered 503 with Retry-After")  # fmt: skip
@click.option("--max-per-day", default="100", show_default=True, callback=btt_or_none,
              help="BTT all requests may spend per UTC day ('none' for no limit)")  # fmt: skip
@listener_options
def proxy(
    host: str, port: int, api_port: int, edges: tuple[str, ...], ledger: str | None,
    intercept: bool, max_transfers: int, max_per_request: int | None, max_per_day: int | None,
    listener_limits: ListenerLimits,
) -> None:  # fmt: skip
    """Browse through paid Atlas edges: set your browser's HTTP/HTTPS proxy to HOST:PORT."""
    try:  # atlas fetch's max_spend does not apply: a proxy has its per-request/day limits
        settings = load_settings(edges, ledger)
        trust = settings.trust_policy()
        settings.deposit_policy()  # checked here, so a bad value is a message, not a traceback
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if not settings.edges:
        raise click.ClickException("no edges: pass --edge URL or run `atlas up` first")
    config = ProxyConfig(
        host=host, port=port, api_port=api_port, home=atlas_home(), edges=settings.edges,
        ledger=settings.ledger, intercept=intercept,
        limits=Limits(per_request=max_per_request, per_day=max_per_day),
        max_transfers=max_transfers, listener=listener_limits, trust=trust,
    )  # fmt: skip
    asyncio.run(run(config))
