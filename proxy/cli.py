"""``atlas proxy``: the browser proxy (mitmproxy) and the mobile API on 127.0.0.1."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import click

from proxy.config import ProxyConfig
from proxy.service import run
from requester.cli.options import settings_options
from requester.settings import ConfigError, load_settings, read_config


@click.command("proxy")
@settings_options(ProxyConfig, config=read_config)
def proxy(config: ProxyConfig) -> None:
    """Browse through paid Atlas edges: set your browser's HTTP/HTTPS proxy to HOST:PORT."""
    try:  # atlas fetch's max_spend does not apply: a proxy has its per-request/day limits
        settings = load_settings()
        trust = settings.trust_policy()
        deposit = settings.deposit_policy()  # checked here: a bad value is a message
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if not config.edges and not config.bootstrap:
        raise click.ClickException(
            "no edges: pass --edge URL or --bootstrap HOST:PORT, or run `atlas up` first"
        )
    asyncio.run(run(replace(config, trust=trust, deposit=deposit)))
