"""BTT amounts given as command-line arguments (``atlas wallet fund AMOUNT``, ``atlas
channel topup CHANNEL AMOUNT``), refused with click's own error, and shown to people.

They are read by the same unit as every amount setting (:data:`requester.setting_units.BTT`:
exact decimals), so an argument, a flag and a variable accept and refuse the same text.
"""

from __future__ import annotations

import click

from requester.protocol import BTT_LOCAL, Asset
from requester.setting_units import BTT


def parse_btt(text: str) -> int:
    """``text`` in BTT (e.g. ``"0.001"``) as base units, or a usage error."""
    try:
        return BTT.parse(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def short_amount(units: int, asset: Asset = BTT_LOCAL, digits: int = 4) -> str:
    """An amount for the eye: at most ``digits`` significant digits after the point
    (``0.00007241 BTT``; exact amounts are in ``--json``)."""
    whole, frac = divmod(units, asset.one)
    text = str(frac).rjust(asset.decimals, "0")
    lead = len(text) - len(text.lstrip("0")) if whole == 0 else 0
    kept = text[: lead + digits].rstrip("0")
    return f"{whole}.{kept} {asset.symbol}" if kept else f"{whole} {asset.symbol}"
