"""Reading the channel contract and its token on a TRON full node (constant calls only).

:class:`ChainReader` finds the deployment once (contract, token, asset, payment
domain, close grace) and answers reads: channel views in the embedded ledger's
shape, token balances and allowances, and dry runs of a call
(``triggerconstantcontract`` as the caller would send it), so a call the
contract would refuse is refused here before a transaction spends energy, with
the embedded ledger's status and code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from tronpy import AsyncTron

from requester.ledger_client import LedgerError
from requester.protocol import Asset, PaymentDomain, TronAddress
from requester.tron.artifacts import load
from requester.tron.channel_contract import (
    ChannelContract,
    asset_of,
    decode,
    encode,
    tron_address,
)

NAME_THE_CONTRACT = "name the channel contract (ledger_contract or ?contract=T...)"
NOBODY = TronAddress(b"\x41" + bytes(20))
"""The caller of reads that no account makes."""


@dataclass(frozen=True)
class Deployment:
    """One channel contract on one chain, as read from it."""

    contract: TronAddress
    token: TronAddress
    asset: Asset
    domain: PaymentDomain
    close_grace: int


class ChainReader:
    def __init__(self, client: AsyncTron, endpoint: str, session: aiohttp.ClientSession,
                 contract: str | None) -> None:  # fmt: skip
        self._client, self._endpoint, self._session = client, endpoint, session
        self._configured = contract
        self.abi = ChannelContract(load("AtlasChannels").abi)
        self._deployment: Deployment | None = None
        self.node_info: dict[str, Any] | None = None
        """The offline node's ``/atlas/info`` (None on a real node)."""

    async def deployment(self) -> Deployment:
        if self._deployment is None:
            address = self._configured or await self._contract_from_node()
            try:
                contract = TronAddress.parse(address)
            except ValueError as exc:
                raise LedgerError(
                    400, "bad_request", f"ledger contract {address!r}: {exc}"
                ) from exc
            token = await self._word(contract, "token()", [], "address")
            asset = asset_of(await self._word(contract, "assetId()", [], "bytes32"))
            chain_id = await self._word(contract, "chainId()", [], "uint256")
            grace = await self._word(contract, "closeGrace()", [], "uint64")
            domain = PaymentDomain(int(chain_id), contract.evm)
            separator = await self._word(contract, "domainSeparator()", [], "bytes32")
            if separator != domain.separator:
                why = f"{contract}'s domain separator is not the vouchers' one"
                raise LedgerError(502, "bad_ledger_response", why)
            self._deployment = Deployment(contract, tron_address(token), asset, domain, int(grace))
        return self._deployment

    async def _contract_from_node(self) -> str:
        """The contract the offline node (``atlas ledger tron-node``) deployed."""
        try:
            async with self._session.get(f"{self._endpoint}/atlas/info") as resp:
                info = await resp.json(content_type=None) if resp.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            info = None
        if not isinstance(info, dict) or not isinstance(info.get("contract"), str):
            raise LedgerError(400, "no_contract", f"{self._endpoint}: {NAME_THE_CONTRACT}")
        self.node_info = info
        return str(info["contract"])

    async def channel(self, channel_id: bytes) -> dict[str, Any] | None:
        """The channel's view as the embedded ledger gives it; None if there is none."""
        d = await self.deployment()
        raw = await self.dry_run(NOBODY, d.contract, "channels(bytes32)", ["bytes32"],
                                 [channel_id], "reading a channel")  # fmt: skip
        return self.abi.channel_view(channel_id, raw, d.asset)

    async def token_balance(self, owner: TronAddress) -> int:
        d = await self.deployment()
        return int(await self._word(d.token, "balanceOf(address)", [owner], "uint256"))

    async def allowance(self, owner: TronAddress) -> int:
        d = await self.deployment()
        args = [owner, d.contract]
        return int(await self._word(d.token, "allowance(address,address)", args, "uint256"))

    async def trx_balance(self, owner: TronAddress) -> int:
        """Sun the account holds (0 for an account the chain has never seen)."""
        answer = await self._client.provider.make_request(
            "wallet/getaccount", {"address": owner.base58(), "visible": True}
        )
        return int(answer.get("balance", 0)) if isinstance(answer, dict) else 0

    async def head_ms(self) -> int:
        block = await self._client.get_latest_block()
        return int(block["block_header"]["raw_data"]["timestamp"])

    async def _word(self, at: TronAddress, signature: str, args: list[Any], kind: str) -> Any:
        types = signature[signature.index("(") + 1 : -1]
        raw = await self.dry_run(NOBODY, at, signature, types.split(",") if types else [], args,
                                 f"reading {signature}")  # fmt: skip
        return decode([kind], raw)[0]

    async def dry_run(self, caller: TronAddress, at: TronAddress, signature: str,
                      types: list[str], args: list[Any], doing: str) -> bytes:  # fmt: skip
        """What ``caller`` calling ``signature`` on ``at`` returns now, changing nothing; a
        revert raises the refusal it means."""
        answer = await self._client.provider.make_request(
            "wallet/triggerconstantcontract",
            {"owner_address": caller.base58(), "contract_address": at.base58(),
             "function_selector": signature, "parameter": encode(types, args).hex(),
             "visible": True},
        )  # fmt: skip
        if not isinstance(answer, dict):
            raise LedgerError(502, "bad_ledger_response", f"{doing}: the node answered {answer!r}")
        data = bytes.fromhex((answer.get("constant_result") or [""])[0] or "")
        result = answer.get("result", {})
        ret = (answer.get("transaction", {}).get("ret") or [{}])[0].get("ret")
        if "message" in result or result.get("code") or ret == "FAILED":
            if data or ret == "FAILED":
                raise self.abi.refusal(data, doing)
            message = _text(str(result.get("message", result.get("code"))))
            raise LedgerError(502, "bad_ledger_response", f"{doing}: the node says {message}")
        return data


def _text(message: str) -> str:
    try:
        return bytes.fromhex(message).decode()
    except ValueError:
        return message
