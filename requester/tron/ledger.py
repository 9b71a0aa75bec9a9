"""The channel ledger on TRON: the ``AtlasChannels`` contract through tronpy's AsyncTron.

:class:`TronLedger` is the second :class:`~requester.ledger_api.Ledger`: same
methods, same channel views and the same refusals (status and code) as the
embedded ledger's :class:`~requester.ledger_client.LedgerClient`. A payer's
call is still signed as the embedded ledger wants it (a :class:`SignedOp`, the
intent the SDK records before sending, ``requester/recorded_calls.py``); here
its ``op_hash`` names the TRON transactions that carry it, in the
:class:`TxJournal`, so sending a recorded call again after a crash follows the
transaction already journaled instead of making a second one:

- open: ``approve`` of the deposit (its own journaled transaction, skipped if
  the allowance suffices), then ``open(payee, deposit, expiresAt, salt)``; an
  open whose channel exists with the same terms is done (the salt makes it so);
- top-up: the target deposit (the channel's deposit plus the amount) is fixed
  when the call is first journaled; ``approve`` of the amount, then ``topUpTo``;
- redeem (anyone's key; the edge's): journaled per (channel, amount), cumulative;
- reclaim and requestClose: journaled per channel, resumed while unfinished.

Each call is tried as a constant call first, so a refusal costs no energy.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from tronpy import AsyncTron
from tronpy.exceptions import ApiError, BadAddress, UnknownError
from tronpy.providers.async_http import AsyncHTTPProvider

from requester.ledger_client import DEFAULT_TIMEOUT, LedgerError, Record
from requester.protocol import (
    Asset,
    LedgerOp,
    OpenChannel,
    PayerKey,
    PaymentDomain,
    ProtocolError,
    ReclaimChannel,
    SignedOp,
    TopUpChannel,
    TronAddress,
    Voucher,
    format_amount,
    sign_op,
)
from requester.tron.chain_reader import ChainReader
from requester.tron.channel_calls import ChannelCalls
from requester.tron.tx_journal import JOURNAL_FILE, TxJournal

API_KEY_ENV = "TRON_PRO_API_KEY"
REDEEM_ENERGY = 60_000
"""Energy of a redeem at most (the issue's ceiling; a payee's first receipt measured 55,881
in contracts/README.md, later ones 38,761): what an edge's settlement counts as its fee."""
FAUCET_TRX = "100"
"""TRX the offline node's faucet adds to each grant: what ~10 channel opens burn."""


class TronLedger:
    def __init__(
        self, url: str, endpoint: str, session: aiohttp.ClientSession, *,
        contract: str | None, key: PayerKey | None, data_dir: Path | None, fee_limit: int,
    ) -> None:  # fmt: skip
        self.url, self._endpoint, self._session = url, endpoint, session
        self._key, self._fee_limit = key, fee_limit
        provider = AsyncHTTPProvider(endpoint, timeout=30, api_key=os.environ.get(API_KEY_ENV))
        self._client = AsyncTron(provider, conf={"fee_limit": fee_limit})
        self._journal = TxJournal(data_dir / JOURNAL_FILE if data_dir else ":memory:")
        self._chain = ChainReader(self._client, endpoint, session, contract)
        self._calls = ChannelCalls(self._client, self._chain, self._journal, fee_limit)
        self._locks: dict[TronAddress, asyncio.Lock] = {}

    async def close(self) -> None:
        await self._client.close()
        self._journal.close()

    async def domain(self) -> PaymentDomain:
        async with _talking():
            return (await self._chain.deployment()).domain

    async def asset(self) -> Asset:
        async with _talking():
            return (await self._chain.deployment()).asset

    async def info(self) -> dict[str, Any]:
        async with _talking():
            d = await self._chain.deployment()
            return {
                "backend": "tron", "node": self._endpoint, "chain_id": d.domain.chain_id,
                "contract": d.domain.contract.hex(), "contract_address": d.contract.base58(),
                "token": d.token.base58(), "asset": d.asset.uri, "close_grace": d.close_grace,
                "faucet": self._chain.node_info is not None,
                "time": await self._chain.head_ms() // 1000,
            }  # fmt: skip

    async def account(self, address: TronAddress) -> dict[str, Any]:
        async with _talking():
            d = await self._chain.deployment()
            return {"address": address.base58(), "next_nonce": "0",
                    "balances": {d.asset.uri: str(await self._chain.token_balance(address))},
                    "trx": str(await self._chain.trx_balance(address))}  # fmt: skip

    async def balance(self, address: TronAddress, asset: Asset | None = None) -> int:
        async with _talking():
            await self._check_asset(asset)
            return await self._chain.token_balance(address)

    async def channel(self, channel_id: bytes,
                      wait: aiohttp.ClientTimeout = DEFAULT_TIMEOUT) -> dict[str, Any]:  # fmt: skip
        """The channel's view; ``wait`` bounds the whole read (an edge checking a voucher)."""
        async with _talking(), asyncio.timeout(wait.total):
            view = await self._chain.channel(channel_id)
        if view is None:
            raise LedgerError(404, "not_found", f"no channel {channel_id.hex()}")
        return view

    async def channels(self, address: TronAddress) -> list[dict[str, Any]]:
        """The channels this data dir's journal saw opened that involve ``address`` (the
        contract keeps no list; an indexer of its events would)."""
        views = []
        async with _talking():
            for cid in self._journal.channel_ids():
                view = await self._chain.channel(cid)
                if view is not None and str(address) in (view["payer"], view["payee"]):
                    views.append(view)
        return sorted(views, key=lambda v: int(v["opened_at"]))

    async def faucet(self, address: TronAddress, amount: int) -> dict[str, Any]:
        """Test BTT, and FAUCET_TRX for fees, from the offline node's ``POST /atlas/fund``
        (``atlas ledger tron-node``); a node without one answers ``403 faucet_disabled``."""
        async with _talking():
            whole = format_amount(amount, (await self._chain.deployment()).asset).split()[0]
            body = {"address": address.base58(), "btt": whole, "trx": FAUCET_TRX}
            async with self._session.post(f"{self._endpoint}/atlas/fund", json=body) as resp:
                answer = await resp.json(content_type=None)
            if resp.status in (404, 405):
                raise LedgerError(403, "faucet_disabled", f"{self._endpoint} has no faucet")
            if resp.status >= 400 or not isinstance(answer, dict):
                raise LedgerError(resp.status if resp.status >= 400 else 502, "faucet_refused",
                                  str(answer)[:200])  # fmt: skip
            return {**await self.account(address), "minted": str(amount), "replayed": False}

    async def open_channel(
        self, key: PayerKey, payee: TronAddress, deposit: int, expires_at: int,
        asset: Asset | None = None, record: Record | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        async with _talking(), self._signer_lock(key.address):
            d = await self._chain.deployment()
            await self._check_asset(asset)
            op = OpenChannel(key.address, payee, d.asset, deposit, expires_at,
                             secrets.token_bytes(32), secrets.randbits(63))  # fmt: skip
            return await self._sign_and_apply(key, op, record)

    async def top_up(
        self, key: PayerKey, channel_id: bytes, amount: int, expires_at: int,
        record: Record | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        async with _talking(), self._signer_lock(key.address):
            op = TopUpChannel(key.address, channel_id, amount, expires_at, secrets.randbits(63))
            return await self._sign_and_apply(key, op, record)

    async def reclaim(self, key: PayerKey, channel_id: bytes) -> dict[str, Any]:
        """Reclaim after expiry; one a crash left unfinished is followed, not sent again."""
        async with _talking(), self._signer_lock(key.address):
            left = self._calls.unfinished_reclaim(key.address, channel_id)
            if left is not None:
                return await self._calls.apply(key, left)
            op = ReclaimChannel(key.address, channel_id, secrets.randbits(63))
            return await self._sign_and_apply(key, op, None)

    async def request_close(self, key: PayerKey, channel_id: bytes) -> dict[str, Any]:
        """``requestClose``: the expiry becomes min(expiry, now + closeGrace)."""
        async with _talking(), self._signer_lock(key.address):
            return await self._calls.request_close(key, channel_id)

    async def call(self, key: PayerKey, op: LedgerOp) -> dict[str, Any]:
        async with _talking(), self._signer_lock(key.address):
            return await self._sign_and_apply(key, op, None)

    async def send(self, call: SignedOp) -> dict[str, Any]:
        """A call signed earlier (recorded before a crash): its journaled transaction is
        followed; one never built is built now, with this ledger's key if it is the
        signer's (otherwise ``503 no_signer``, and the call stays to settle later)."""
        async with _talking(), self._signer_lock(call.op.account):
            key = self._key if self._key and self._key.address == call.op.account else None
            return await self._calls.apply(key, call)

    async def redeem(self, voucher: Voucher) -> dict[str, Any]:
        """Redeem with this ledger's key (the edge's: anyone may send a voucher)."""
        async with _talking():
            return await self._calls.redeem(self._key, voucher)

    async def redeem_fee(self) -> int:
        """Sun a redeem burns at most: REDEEM_ENERGY at the chain's price (``getEnergyFee``)."""
        async with _talking():
            params = await self._client.get_chain_parameters()
        price = next((int(p.get("value", 0)) for p in params if p.get("key") == "getEnergyFee"), 0)
        return REDEEM_ENERGY * price

    def _signer_lock(self, address: TronAddress) -> asyncio.Lock:
        """One signer's calls one at a time: an approve is followed by the call it allows."""
        return self._locks.setdefault(address, asyncio.Lock())

    async def _check_asset(self, asset: Asset | None) -> None:
        d = await self._chain.deployment()
        if asset is not None and asset != d.asset:
            raise LedgerError(400, "wrong_binding", f"this contract holds {d.asset.uri}, "
                              f"not {asset.uri}")  # fmt: skip

    async def _sign_and_apply(self, key: PayerKey, op: LedgerOp,
                              record: Record | None) -> dict[str, Any]:  # fmt: skip
        signed = sign_op(key, (await self._chain.deployment()).domain, op)
        if record is not None:
            record(signed)
        return await self._calls.apply(key, signed)


@asynccontextmanager
async def _talking() -> AsyncIterator[None]:
    """Failures to reach the node, or answers that make no sense, as LedgerErrors (503/502);
    a refusal is already one."""
    try:
        yield
    except (httpx.HTTPError, TimeoutError) as exc:
        why = str(exc) or type(exc).__name__
        raise LedgerError(503, "ledger_unreachable", f"TRON node: {why}") from exc
    except (ApiError, UnknownError, BadAddress, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ProtocolError):
            raise
        raise LedgerError(502, "bad_ledger_response", f"TRON node: {exc!r}"[:300]) from exc
