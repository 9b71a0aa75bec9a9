"""An async client for the embedded ledger's HTTP API (``docs/ledger.md``).

Used by requesters (open, top up, reclaim), by edges (redeem) and by tests.
Refusals come back as :class:`LedgerError` carrying the server's problem body,
so callers can branch on ``status`` and ``code``. An open or top-up takes a
``record`` callback that gets the signed call before it is sent, so a payer
can persist it first ("persist, then send") and settle it after a crash by
sending it again (:meth:`LedgerClient.send`; the ledger answers a repeat from
its record).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import aiohttp

from requester.errors import Problem, SdkError
from requester.protocol import (
    ASSETS,
    BTT_LOCAL,
    Asset,
    LedgerOp,
    OpenChannel,
    PayerKey,
    PaymentDomain,
    ReclaimChannel,
    SignedOp,
    TopUpChannel,
    TronAddress,
    Voucher,
    format_amount,
    sign_op,
)

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=5)


class LedgerError(SdkError):
    """The ledger refused a call, or could not be reached.

    ``status`` and ``code`` are the ledger's answer (``503 ledger_unreachable`` when it was
    not reached); a server that meets it answers ``402 insufficient_funds`` (the payer must
    fund the wallet) or ``502 ledger_unavailable`` (:meth:`answer`).
    """

    status = 502
    code = "ledger_unavailable"
    title = "The payment ledger refused"

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"ledger refused ({status} {code}): {detail}")
        self.status, self.code, self.detail = status, code, detail

    def answer(self) -> Problem:
        if self.code == "insufficient_funds":
            return Problem(402, self.code, self.detail, "Out of funds")
        return Problem(LedgerError.status, LedgerError.code, self.message, self.title)

    @property
    def refused(self) -> bool:
        """The ledger answered no (4xx): the call was not applied. Otherwise (unreachable,
        a bad answer) it may or may not have been."""
        return 400 <= self.status < 500


Record = Callable[[SignedOp], None]
"""Called with a signed call before it is sent; it raises to stop the send."""


class LedgerClient:
    """The embedded ledger (``atlas ledger serve``), one of the two :class:`Ledger`
    implementations (``requester/ledger_api.py``)."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url.rstrip("/")
        self._session = session
        self._domain: PaymentDomain | None = None
        self._asset: Asset | None = None
        self._locks: dict[TronAddress, asyncio.Lock] = {}

    async def domain(self) -> PaymentDomain:
        if self._domain is None:
            await self._learn()
            assert self._domain is not None
        return self._domain

    async def asset(self) -> Asset:
        """The asset channels are in: local BTT, as ``/v1/info`` names it."""
        if self._asset is None:
            await self._learn()
            assert self._asset is not None
        return self._asset

    async def _learn(self) -> None:
        """The domain and the asset, from one ``/v1/info`` (a first payment asks for both:
        one round trip to the ledger, not two)."""
        info = await self.info()
        self._domain = PaymentDomain(int(info["chain_id"]), bytes.fromhex(info["contract"]))
        uri = info.get("asset", BTT_LOCAL.uri)
        self._asset = next((a for a in ASSETS.values() if a.uri == uri), BTT_LOCAL)

    async def info(self) -> dict[str, Any]:
        return await self._request("GET", "/v1/info")

    async def close(self) -> None:
        """Nothing to release: the session belongs to the caller."""

    async def account(self, address: TronAddress) -> dict[str, Any]:
        return await self._request("GET", f"/v1/accounts/{address}")

    async def balance(self, address: TronAddress, asset: Asset | None = None) -> int:
        uri = (asset or BTT_LOCAL).uri
        return int((await self.account(address))["balances"].get(uri, "0"))

    async def channel(
        self, channel_id: bytes, wait: aiohttp.ClientTimeout = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """The channel's terms and state; an edge checking a voucher waits less (``wait``):
        it must answer its requester well within the requester's own timeout."""
        return await self._request("GET", f"/v1/channels/{channel_id.hex()}", wait=wait)

    async def channels(self, address: TronAddress) -> list[dict[str, Any]]:
        return list((await self._request("GET", f"/v1/accounts/{address}/channels"))["channels"])

    async def faucet(self, address: TronAddress, amount: int) -> dict[str, Any]:
        """Mint ``amount`` base units of local BTT (ledgers started with ``--faucet``)."""
        body = {
            "address": str(address),
            "amount": format_amount(amount, BTT_LOCAL),
            "request_id": secrets.token_hex(16),
        }
        return await self._request("POST", "/v1/faucet", body)

    async def open_channel(
        self, key: PayerKey, payee: TronAddress, deposit: int, expires_at: int,
        asset: Asset | None = None, record: Record | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        async with self._signer_lock(key.address):
            nonce = await self._next_nonce(key.address)
            op = OpenChannel(key.address, payee, asset or BTT_LOCAL, deposit, expires_at,
                             secrets.token_bytes(32), nonce)  # fmt: skip
            return await self._sign_and_send(key, op, record)

    async def top_up(
        self, key: PayerKey, channel_id: bytes, amount: int, expires_at: int,
        record: Record | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        async with self._signer_lock(key.address):
            nonce = await self._next_nonce(key.address)
            op = TopUpChannel(key.address, channel_id, amount, expires_at, nonce)
            return await self._sign_and_send(key, op, record)

    async def reclaim(self, key: PayerKey, channel_id: bytes) -> dict[str, Any]:
        async with self._signer_lock(key.address):
            nonce = await self._next_nonce(key.address)
            return await self.call(key, ReclaimChannel(key.address, channel_id, nonce))

    async def request_close(self, key: PayerKey, channel_id: bytes) -> dict[str, Any]:
        """The channel as it stands: the embedded ledger has no close request (a payer
        stops paying and reclaims at expiry; on TRON, ``requestClose`` moves the expiry
        near)."""
        return {"channel": await self.channel(channel_id), "replayed": False}

    def _signer_lock(self, address: TronAddress) -> asyncio.Lock:
        """Calls by one signer take nonces in order: one at a time per address."""
        return self._locks.setdefault(address, asyncio.Lock())

    async def call(self, key: PayerKey, op: LedgerOp) -> dict[str, Any]:
        """Sign and send one call; safe to retry with the same ``op`` (idempotent)."""
        return await self._sign_and_send(key, op, None)

    async def send(self, call: SignedOp) -> dict[str, Any]:
        """Send a call signed earlier (recorded before a crash, say), in turn with this
        client's other calls by its signer. A call the ledger applied is answered again
        from its record (``"replayed": true``); one whose nonce another call took is refused
        ``bad_nonce`` and can never apply."""
        async with self._signer_lock(call.op.account):
            return await self._post_call(call)

    async def _sign_and_send(self, key: PayerKey, op: LedgerOp, record: Record | None
                             ) -> dict[str, Any]:  # fmt: skip
        signed = sign_op(key, await self.domain(), op)
        if record is not None:
            record(signed)
        return await self._post_call(signed)

    async def _post_call(self, call: SignedOp) -> dict[str, Any]:
        return await self._request("POST", "/v1/calls", call.to_json())

    async def redeem(self, voucher: Voucher) -> dict[str, Any]:
        return await self._request("POST", "/v1/redeem", {"voucher": voucher.to_header()})

    async def redeem_fee(self) -> int:
        """Redeeming on the embedded ledger costs nothing."""
        return 0

    async def _next_nonce(self, address: TronAddress) -> int:
        return int((await self.account(address))["next_nonce"])

    async def _request(
        self, method: str, path: str, body: object = None,
        wait: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:  # fmt: skip
        try:
            async with self._session.request(
                method, self.url + path, json=body, timeout=wait
            ) as resp:
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            why = str(exc) or type(exc).__name__  # a timeout says nothing by itself
            raise LedgerError(503, "ledger_unreachable", f"{self.url}: {why}") from exc
        if not isinstance(data, dict):
            raise LedgerError(502, "bad_ledger_response", "ledger answered with non-object JSON")
        if resp.status >= 400:
            code = str(data.get("type", "")).rsplit("/", 1)[-1] or "error"
            raise LedgerError(resp.status, code, str(data.get("detail")))
        return data
