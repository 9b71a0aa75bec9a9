"""The channel ledger as callers see it, on either backend: the :class:`Ledger` protocol.

Two implementations answer with the same views and the same refusals
(:class:`~requester.ledger_client.LedgerError` status and code, docs/ledger.md):

- :class:`~requester.ledger_client.LedgerClient`, the embedded ledger over HTTP
  (``http://HOST:PORT``, the default, zero setup);
- :class:`~requester.tron.ledger.TronLedger`, the ``AtlasChannels`` contract on a
  TRON full node through tronpy (``tron+http://HOST:PORT``, ``tron+https://...``,
  ``tron:nile``, ``tron:mainnet``).

:func:`open_ledger` picks one by the URL (read by :mod:`requester.ledger_urls`).
``tronpy`` is imported only for a TRON URL (it costs 0.3 s at every start of ``atlas``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import aiohttp

from requester.ledger_client import DEFAULT_TIMEOUT, LedgerClient, LedgerError, Record
from requester.ledger_urls import DEFAULT_FEE_LIMIT, TRON_NETWORKS, LedgerTarget, parse_ledger_url
from requester.protocol import (
    Asset,
    LedgerOp,
    PayerKey,
    PaymentDomain,
    SignedOp,
    TronAddress,
    Voucher,
)

__all__ = [
    "DEFAULT_FEE_LIMIT", "TRON_NETWORKS", "Ledger", "LedgerTarget", "open_ledger",
    "parse_ledger_url",
]  # fmt: skip


class Ledger(Protocol):
    """A channel ledger: accounts, channels, and the calls that move money."""

    url: str
    """The URL it was opened with (recorded with each channel a payer opens)."""

    async def domain(self) -> PaymentDomain: ...
    async def asset(self) -> Asset: ...
    async def info(self) -> dict[str, Any]: ...
    async def account(self, address: TronAddress) -> dict[str, Any]: ...
    async def balance(self, address: TronAddress, asset: Asset | None = None) -> int: ...
    async def channel(
        self, channel_id: bytes, wait: aiohttp.ClientTimeout = DEFAULT_TIMEOUT
    ) -> dict[str, Any]: ...
    async def channels(self, address: TronAddress) -> list[dict[str, Any]]: ...
    async def faucet(self, address: TronAddress, amount: int) -> dict[str, Any]: ...
    async def open_channel(
        self, key: PayerKey, payee: TronAddress, deposit: int, expires_at: int,
        asset: Asset | None = None, record: Record | None = None,
    ) -> dict[str, Any]: ...  # fmt: skip
    async def top_up(
        self, key: PayerKey, channel_id: bytes, amount: int, expires_at: int,
        record: Record | None = None,
    ) -> dict[str, Any]: ...  # fmt: skip
    async def reclaim(self, key: PayerKey, channel_id: bytes) -> dict[str, Any]: ...
    async def request_close(self, key: PayerKey, channel_id: bytes) -> dict[str, Any]: ...
    async def call(self, key: PayerKey, op: LedgerOp) -> dict[str, Any]: ...
    async def send(self, call: SignedOp) -> dict[str, Any]: ...
    async def redeem(self, voucher: Voucher) -> dict[str, Any]: ...
    async def redeem_fee(self) -> int:
        """Sun one redeem burns at most (0: redeeming is free, as on the embedded ledger)."""
        ...

    async def close(self) -> None: ...


def open_ledger(
    url: str,
    session: aiohttp.ClientSession,
    *,
    key: PayerKey | None = None,
    data_dir: Path | None = None,
    contract: str | None = None,
    fee_limit: int = DEFAULT_FEE_LIMIT,
) -> Ledger:
    """The ledger ``url`` names. For TRON: ``key`` signs redeems and the transactions a
    crash left to rebuild, ``data_dir`` holds the transaction journal (none: kept in
    memory, not crash safe), ``contract`` (else ``?contract=`` in the URL, else the
    node's ``/atlas/info``) is the channel contract, ``fee_limit`` in sun. Close it with
    ``await ledger.close()``."""
    target = parse_ledger_url(url)
    if not target.tron:
        return LedgerClient(target.endpoint, session)
    if target.endpoint in TRON_NETWORKS.values() and not (contract or target.contract):
        why = f"{url}: name the channel contract (ledger_contract or ?contract=T...)"
        raise LedgerError(400, "no_contract", why)
    from requester.tron.ledger import TronLedger

    return TronLedger(
        url, target.endpoint, session, contract=contract or target.contract, key=key,
        data_dir=data_dir, fee_limit=fee_limit,
    )  # fmt: skip
