"""What a payer may lock in channels: the :class:`DepositPolicy` of new channels, and the
:class:`NewChannelAllowance` for payees not trusted yet.

Apart from :mod:`requester.channel_manager` (which re-exports both) so that the settings
declaration, which names the default deposit, does not import the ledger client and
aiohttp: ``atlas fetch --help`` reads that declaration.
"""

from __future__ import annotations

from dataclasses import dataclass

from requester.protocol import BTT_LOCAL


@dataclass(frozen=True)
class DepositPolicy:
    deposit: int = 10 * BTT_LOCAL.one
    """Deposit of each new channel (raised to cover one payment if needed)."""
    duration: int = 24 * 3600
    """Seconds until a new channel expires."""


@dataclass
class NewChannelAllowance:
    """How many more channels a caller may open (or top up) for payees it does not trust
    yet, and the deposit each gets: what such payees can lock up is ``channels * deposit``."""

    channels: int
    deposit: int
