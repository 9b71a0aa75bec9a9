"""A payer (or a payee) in its own process, on TRON, for the kills between a
transaction's steps.

    python -m tests.tron.tron_payer_worker HOME LEDGER_URL KEY_HEX topup CHANNEL_ID UNITS NOW
    python -m tests.tron.tron_payer_worker HOME LEDGER_URL KEY_HEX open PAYEE UNITS NOW
    python -m tests.tron.tron_payer_worker HOME LEDGER_URL KEY_HEX redeem VOUCHER 0 0
    python -m tests.tron.tron_payer_worker HOME LEDGER_URL KEY_HEX reclaim CHANNEL_ID 0 0

Runs one top-up or open through the SDK (a ``ChannelManager`` over the
``PayerStore`` and the TRON transaction journal in HOME), as ``atlas channel``
does, or one redeem (as an edge's settlement) or reclaim on the ledger itself.
Started with ``ATLAS_FAILPOINTS=tron.broadcast_sent=2`` (say), it dies at that
step; the test then settles from the same HOME and checks what applied. Prints
the answer when it lives to the end.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp

from requester.channel_manager import ChannelManager
from requester.ledger_api import open_ledger
from requester.payer_store import PayerStore
from requester.protocol import PayerKey, TronAddress, Voucher


async def _run(home: Path, url: str, key: PayerKey, what: str, target: str, units: int,
               now: int) -> Any:  # fmt: skip
    store = PayerStore(home / "state.sqlite3")
    async with aiohttp.ClientSession() as session:
        ledger = open_ledger(url, session, key=key, data_dir=home)
        try:
            if what == "redeem":
                return await ledger.redeem(Voucher.from_header(target))
            if what == "reclaim":
                return await ledger.reclaim(key, bytes.fromhex(target))
            manager = ChannelManager(key, store, ledger)
            if what == "topup":
                channel = await manager.top_up(bytes.fromhex(target), units, 0, now)
            else:
                channel = await manager.open_channel(TronAddress.parse(target), units, now, 3600)
            return {"deposit": str(channel.terms.deposit)}
        finally:
            await ledger.close()
            store.close()


def main() -> None:
    home, url, key, what, target, units, now = sys.argv[1:8]
    answer = asyncio.run(_run(Path(home), url, PayerKey(bytes.fromhex(key)), what, target,
                              int(units), int(now)))  # fmt: skip
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
