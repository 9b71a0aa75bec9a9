"""The Atlas requester SDK: download content through paid Atlas edges, verified chunk by chunk.

A free download needs only a client and an aiohttp session::

    async with aiohttp.ClientSession() as session:
        client = requester.AtlasClient(settings.edges, session, None)
        download = await client.open(url)
        async for chunk in download.chunks(): ...

A paying one gives the client a :class:`Budget` over a :class:`ChannelManager` (the
wallet's keys from :mod:`requester.keystore`, a :class:`PayerStore`, a
:class:`Ledger` from :func:`open_ledger`: the embedded ledger's :class:`LedgerClient`, or
the channel contract on TRON), as ``atlas fetch`` does (requester/cli/fetch.py). Every error is
an :class:`AtlasError`; catch by meaning (:class:`SdkError`: the SDK could not do it,
:class:`Refusal`: a peer or the protocol refused), see requester/errors.py.

These names are the public API (tests/test_public_api.py holds the list). They are loaded
on first use, so ``import requester`` (which ``import requester.protocol`` runs too) stays
cheap; the modules behind them are importable as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from requester.channel_manager import ChannelManager, SpendLimitReached
    from requester.chunk_client import Budget
    from requester.client import (
        AtlasClient,
        Download,
        EdgeUnavailable,
        FetchRefused,
        TorrentListing,
    )
    from requester.download_failures import ContentFailedAtOrigin, NoProvidersLeft
    from requester.download_progress import Progress
    from requester.errors import AtlasError, Refusal, SdkError
    from requester.keystore import KeystoreError
    from requester.ledger_api import Ledger, open_ledger
    from requester.ledger_client import LedgerClient, LedgerError
    from requester.payer_store import PayerStore
    from requester.protocol import BTT_LOCAL, ProtocolError, format_amount, parse_amount
    from requester.settings import ConfigError, Settings, load_settings

_HOMES = {
    "AtlasClient": "requester.client",
    "Download": "requester.client",
    "Progress": "requester.download_progress",
    "Settings": "requester.settings",
    "load_settings": "requester.settings",
    "Budget": "requester.chunk_client",
    "ChannelManager": "requester.channel_manager",
    "PayerStore": "requester.payer_store",
    "LedgerClient": "requester.ledger_client",
    "Ledger": "requester.ledger_api",
    "open_ledger": "requester.ledger_api",
    "BTT_LOCAL": "requester.protocol",
    "format_amount": "requester.protocol",
    "parse_amount": "requester.protocol",
    "AtlasError": "requester.errors",
    "Refusal": "requester.errors",
    "SdkError": "requester.errors",
    "ProtocolError": "requester.protocol",
    "SpendLimitReached": "requester.channel_manager",
    "TorrentListing": "requester.client",
    "FetchRefused": "requester.client",
    "EdgeUnavailable": "requester.client",
    "NoProvidersLeft": "requester.download_failures",
    "ContentFailedAtOrigin": "requester.download_failures",
    "LedgerError": "requester.ledger_client",
    "KeystoreError": "requester.keystore",
    "ConfigError": "requester.settings",
}
"""Each public name and the module that defines it."""

__all__ = [
    "BTT_LOCAL",
    "AtlasClient",
    "AtlasError",
    "Budget",
    "ChannelManager",
    "ConfigError",
    "ContentFailedAtOrigin",
    "Download",
    "EdgeUnavailable",
    "FetchRefused",
    "KeystoreError",
    "Ledger",
    "LedgerClient",
    "LedgerError",
    "NoProvidersLeft",
    "PayerStore",
    "Progress",
    "ProtocolError",
    "Refusal",
    "SdkError",
    "Settings",
    "SpendLimitReached",
    "TorrentListing",
    "format_amount",
    "load_settings",
    "open_ledger",
    "parse_amount",
]


def __getattr__(name: str) -> object:
    """A public name, imported from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'requester' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
