"""BTT amounts on the command line: exact decimals, refused with click's own error.

Shared by every ``atlas`` subcommand that takes an amount (the edge and the proxy
import it too), so they all accept and refuse the same text the same way.
"""

from __future__ import annotations

import click

from requester.protocol import BTT_LOCAL, MalformedMessage, parse_amount


def parse_btt(text: str) -> int:
    """``text`` in BTT (e.g. ``"0.001"``) as base units, or a usage error."""
    try:
        return parse_amount(text, BTT_LOCAL)
    except MalformedMessage as exc:
        raise click.BadParameter(exc.message) from exc


def btt(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """Click callback for a required amount."""
    return parse_btt(value)


def optional_btt(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """Click callback for an amount that may be left out."""
    return None if value is None else parse_btt(value)


def btt_or_none(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """Click callback for a limit: absent, or the word ``none``, means no limit."""
    if value is None or value.lower() == "none":
        return None
    return parse_btt(value)
