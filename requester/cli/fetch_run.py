"""What ``atlas fetch`` runs once its arguments are read: the paid download, and its summary.

Apart from :mod:`requester.cli.fetch` (the command, its options and messages) so that
``atlas fetch --help`` and a usage error do not import the SDK.
"""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from requester import keystore
from requester.channel_manager import ChannelManager
from requester.chunk_client import Budget
from requester.cli.fetch_output import load_sidecar, save, sidecar_of
from requester.client import AtlasClient
from requester.payer_store import PayerStore
from requester.protocol import BTT_LOCAL, format_amount
from requester.settings import Settings

if TYPE_CHECKING:
    from requester.dht_bootstrap import Finder


async def run(
    url: str, output: Path | None, settings: Settings, max_spend: int | None,
    torrent_file: str | None = None, shown: bool = False, keys: keystore.Keys | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Download ``url`` to ``output`` (stdout if None) through the configured edges and
    ledger, paying with ``keys`` (the wallet :func:`requester.cli.fetch.unlock` opened;
    None: the free allowance only); the summary ``atlas fetch --json`` prints."""
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        budget = _payer(settings, keys, session, max_spend, stack)
        edges, finder = await _edges(stack, settings, session)
        client = AtlasClient(edges, session, budget,
                             max_price_per_mib=settings.max_price,
                             trust=settings.trust_policy(),
                             target_rate=settings.target_rate, finder=finder)  # fmt: skip
        stack.callback(client.leave_credit)  # before the store closes: the next fetch spends it
        sidecar = sidecar_of(output)
        resumed = load_sidecar(sidecar, url)
        if resumed is not None:
            download = await client.resume(resumed[0], start_index=resumed[1])
        else:
            download = await client.open(url, file=torrent_file)
        await save(download, output, sidecar, url, resumed[1] if resumed else 0, shown=shown)
        progress = download.progress
        return {
            "url": url,
            "content_id": download.head.content_id.hex(),
            "status": download.head.status,
            "bytes": progress.delivered_bytes,
            "seconds": round(time.monotonic() - started, 3),
            "paid": str(progress.paid),
            "paid_text": format_amount(progress.paid, BTT_LOCAL),
            "resumed_from_chunk": resumed[1] if resumed else 0,
            "max_spend": None if max_spend is None else str(max_spend),
            "target_rate": settings.target_rate,
            "providers": download.provider_summary(),
            "dropped": {p: s.dropped for p, s in progress.providers.items() if s.dropped},
            "evidence": {p: s.evidence for p, s in progress.providers.items() if s.evidence},
        }
    raise AssertionError("unreachable")


async def _edges(stack: AsyncExitStack, settings: Settings, session: aiohttp.ClientSession
                 ) -> tuple[list[str], Finder | None]:  # fmt: skip
    """The edges to ask and the DHT's finder (:func:`requester.dht_bootstrap.edges_and_finder`).
    The DHT's module and libtorrent (~11 MiB of memory, ~10 ms) load only with a bootstrap."""
    if not settings.bootstrap:
        return list(settings.edges), None
    from requester.dht_bootstrap import edges_and_finder

    return await edges_and_finder(stack, settings.edges, settings.bootstrap, session)


def _payer(settings: Settings, keys: keystore.Keys | None, session: aiohttp.ClientSession,
           max_spend: int | None, stack: AsyncExitStack) -> Budget | None:  # fmt: skip
    if keys is None or settings.ledger is None:
        return None  # free allowance only
    store = PayerStore(settings.state_path)
    stack.callback(store.close)
    ledger = settings.open_ledger(session, keys.payer)
    stack.push_async_callback(ledger.close)
    manager = ChannelManager(keys.payer, store, ledger, settings.deposit_policy())
    return Budget(manager, max_spend, SPEND_HINT)


SPEND_HINT = (
    "; raise it with --max-spend AMOUNT, or max_spend in config.json or ATLAS_MAX_SPEND "
    "(none: no limit)"
)
