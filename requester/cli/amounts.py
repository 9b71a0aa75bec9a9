"""BTT amounts given as command-line arguments (``atlas wallet fund AMOUNT``, ``atlas
channel topup CHANNEL AMOUNT``), refused with click's own error.

They are read by the same unit as every amount setting (:data:`requester.setting_units.BTT`:
exact decimals), so an argument, a flag and a variable accept and refuse the same text.
"""

from __future__ import annotations

import click

from requester.setting_units import BTT


def parse_btt(text: str) -> int:
    """``text`` in BTT (e.g. ``"0.001"``) as base units, or a usage error."""
    try:
        return BTT.parse(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
