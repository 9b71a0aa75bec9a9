"""Deploying the ``AtlasChannels`` contract on a TRON node (``atlas ledger deploy``).

The contract has no owner and no upgrade path, so what a deployment is bound to is
fixed at creation: the token it holds, the asset id vouchers name (keccak256 of the
asset URI, docs/protocol.md section 4) and the close grace a payer's ``requestClose``
leaves the payee. :func:`deploy` sends one ``CreateSmartContract`` through tronpy's
own deploy path with an explicit fee limit, waits for its receipt, then reads those
values back from the chain (and checks ``domainSeparator()`` is the vouchers' one for
this chain and address), so an address it returns is one vouchers can be paid on.

Before it spends anything it refuses, with the reason, a deployer holding no TRX and a
token address without code (the constructor would revert with ``TokenRefused``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from tronpy import AsyncTron
from tronpy.async_contract import AsyncContract
from tronpy.exceptions import (
    ApiError,
    TransactionError,
    TransactionNotFound,
    TvmError,
    UnknownError,
    ValidationError,
)
from tronpy.keys import PrivateKey
from tronpy.providers.async_http import AsyncHTTPProvider

from requester import keystore
from requester.errors import SdkError
from requester.protocol import Asset, MalformedMessage, PayerKey, PaymentDomain, TronAddress
from requester.protocol.voucher import asset_id
from requester.tron.artifacts import load
from requester.tron.channel_contract import decode, encode

API_KEY_ENV = "TRON_PRO_API_KEY"
RECEIPT_TIMEOUT = 90.0
"""Seconds to wait for the receipt (a TRON block every 3 s; a busy node takes longer)."""
CONSTRUCTOR = ["address", "bytes32", "uint64"]
MAX_CLOSE_GRACE = 365 * 86400
SUN = 10**6


class DeployError(SdkError):
    """The contract was not deployed, or not as asked; the message says why and what to do."""

    status = 502
    code = "deploy_failed"


@dataclass(frozen=True)
class DeployRequest:
    node: str
    """The full node's HTTP API (``http://HOST:PORT``, ``https://api.trongrid.io``)."""
    token: TronAddress
    asset: Asset
    close_grace: int
    """Seconds."""
    fee_limit: int
    """Sun: the most the deployment may burn in energy."""
    chain_id: int | None = None
    """The chain id ``chainId()`` must report; None: whatever the node's chain is."""


@dataclass(frozen=True)
class Deployed:
    """A deployment, as read back from the chain."""

    contract: str
    txid: str
    deployer: str
    token: str
    asset: str
    asset_id: str
    chain_id: int
    close_grace: int
    domain_separator: str
    energy_used: int
    fee_sun: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def deployer_key(key_file: Path | None, home: Path) -> PayerKey:
    """The key in ``key_file`` (64 hex digits), else the Atlas wallet in ``home``."""
    if key_file is None:
        passphrase = keystore.stored_passphrase(home)
        if passphrase is None:
            raise DeployError(f"the wallet in {home} needs its passphrase: set "
                              f"{keystore.PASSPHRASE_ENV}, or pass --key-file")  # fmt: skip
        try:
            return keystore.load(home / "wallet.json", passphrase).payer
        except keystore.KeystoreError as exc:
            raise DeployError(f"{exc.message}; or pass --key-file") from None
    try:
        text = key_file.read_text().strip().removeprefix("0x")
        return PayerKey(bytes.fromhex(text))
    except OSError as exc:
        raise DeployError(f"cannot read the key file {key_file}: {exc.strerror}") from None
    except (ValueError, MalformedMessage):
        raise DeployError(f"{key_file} does not hold a TRON private key (64 hex digits)") from None


async def deploy(request: DeployRequest, key: PayerKey) -> Deployed:
    """Deploy ``AtlasChannels`` for ``request`` from ``key``'s account and check it on chain."""
    if not 0 < request.close_grace <= MAX_CLOSE_GRACE:
        raise DeployError(f"close grace {request.close_grace} s: must be 1 s to 365 days")
    provider = AsyncHTTPProvider(request.node, timeout=30, api_key=os.environ.get(API_KEY_ENV))
    client = AsyncTron(provider, conf={"fee_limit": request.fee_limit})
    try:
        await _check_deployer(client, key.address, request.fee_limit)
        await _check_token(client, request.token)
        txid, receipt = await _create(client, request, key)
        return await _read_back(client, request, key.address, txid, receipt)
    except httpx.HTTPStatusError as exc:
        status, path = exc.response.status_code, exc.request.url.path
        raise DeployError(
            f"the TRON node at {request.node} answered HTTP {status} to {path}"
        ) from None
    except httpx.HTTPError as exc:
        why = str(exc) or type(exc).__name__
        raise DeployError(f"cannot reach the TRON node at {request.node}: {why}") from None
    except (ApiError, UnknownError, TvmError, KeyError, ValueError, TypeError) as exc:
        why = f"the TRON node at {request.node} answered oddly: {exc!r}"
        raise DeployError(why[:300]) from None
    finally:
        await client.close()


async def _check_deployer(client: AsyncTron, deployer: TronAddress, fee_limit: int) -> None:
    """A deployment burns TRX for energy: an account with none cannot pay for it."""
    account = await client.provider.make_request(
        "wallet/getaccount", {"address": deployer.base58(), "visible": True}
    )
    if not int(account.get("balance", 0)):
        raise DeployError(
            f"the deployer {deployer} holds no TRX on this chain; a deployment burns up to "
            f"{fee_limit / SUN:g} TRX (the fee limit) in energy: send it TRX first"
        )


async def _check_token(client: AsyncTron, token: TronAddress) -> None:
    found = await client.provider.make_request(
        "wallet/getcontract", {"value": token.base58(), "visible": True}
    )
    if not found.get("bytecode"):
        raise DeployError(
            f"the token {token} has no contract code on this chain: pass the TRC-20 "
            "token's address (on mainnet BTT is TAFjULxiVgT4qWk6UZwjqwZXTSaGaqnVp4)"
        )


async def _create(client: AsyncTron, request: DeployRequest,
                  key: PayerKey) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """Send the ``CreateSmartContract`` and wait for its receipt; a failed one raises."""
    artifact = load("AtlasChannels")
    args = encode(CONSTRUCTOR, [request.token, asset_id(request.asset), request.close_grace])
    contract = AsyncContract(
        name="AtlasChannels", bytecode=artifact.bytecode + args, abi=artifact.abi,
        user_resource_percent=100, origin_energy_limit=1,
    )  # fmt: skip
    owner = key.address.base58()
    builder = client.trx.deploy_contract(owner, contract).fee_limit(request.fee_limit)
    try:
        signed = (await builder.build()).sign(PrivateKey(key.secret))
        sent = await signed.broadcast()
    except (ApiError, UnknownError, TransactionError, ValidationError, ValueError) as exc:
        raise DeployError(f"the node refused the deployment: {exc}") from None
    try:
        receipt: dict[str, Any] = await sent.wait(timeout=RECEIPT_TIMEOUT, interval=0.5)
    except TransactionNotFound:
        raise DeployError(f"no receipt for transaction {sent.txid} within {RECEIPT_TIMEOUT:g} s; "
                          "look it up on the node before deploying again") from None  # fmt: skip
    if receipt.get("result") == "FAILED":
        raise DeployError(_failure(receipt, request.fee_limit, artifact.error_of))
    return str(sent.txid), receipt


def _failure(receipt: dict[str, Any], fee_limit: int, error_of: Any) -> str:
    result = receipt.get("receipt", {}).get("result", "FAILED")
    txid = receipt.get("id", "")
    if result == "OUT_OF_ENERGY":
        return (f"the deployment {txid} ran out of energy within the fee limit of "
                f"{fee_limit / SUN:g} TRX: raise --fee-limit (or the deployer's TRX)")  # fmt: skip
    data = bytes.fromhex((receipt.get("contractResult") or [""])[0] or "")
    error = error_of(data)
    if error == "TokenRefused()":
        return f"the contract refused the token (no code at its address): {txid}"
    message = str(receipt.get("resMessage", ""))
    with contextlib.suppress(ValueError):  # hex unless the request was "visible"
        message = bytes.fromhex(message).decode()
    return f"the deployment {txid} failed: {result} {error or ''} {message}".strip()


async def _read_back(client: AsyncTron, request: DeployRequest, deployer: TronAddress, txid: str,
                     receipt: dict[str, Any]) -> Deployed:  # fmt: skip
    """The deployment's views, each checked against what was asked."""
    contract = TronAddress.parse(str(receipt["contract_address"]))

    async def view(signature: str, kind: str) -> Any:
        raw = await client.trigger_const_smart_contract_function(
            deployer.base58(), contract.base58(), signature, ""
        )
        return decode([kind], bytes.fromhex(raw))[0]

    token = TronAddress.parse(str(await view("token()", "address")))
    got_asset = bytes(await view("assetId()", "bytes32"))
    chain_id = int(await view("chainId()", "uint256"))
    grace = int(await view("closeGrace()", "uint64"))
    separator = bytes(await view("domainSeparator()", "bytes32"))
    expected_chain = request.chain_id if request.chain_id is not None else chain_id
    vouchers_separator = PaymentDomain(chain_id, contract.evm).separator
    checks = (
        ("token()", token, request.token),
        ("assetId()", got_asset.hex(), asset_id(request.asset).hex()),
        ("closeGrace()", grace, request.close_grace),
        ("chainId()", chain_id, expected_chain),
        ("domainSeparator()", separator.hex(), vouchers_separator.hex()),
    )
    wrong = [f"{name} is {got}, not {want}" for name, got, want in checks if got != want]
    if wrong:
        raise DeployError(f"the contract deployed at {contract} is not what was asked (do not "
                          f"use it): {'; '.join(wrong)}")  # fmt: skip
    used = receipt.get("receipt", {})
    return Deployed(
        contract=contract.base58(), txid=txid, deployer=deployer.base58(),
        token=token.base58(), asset=request.asset.uri, asset_id=got_asset.hex(),
        chain_id=chain_id, close_grace=grace, domain_separator=separator.hex(),
        energy_used=int(used.get("energy_usage_total", 0)), fee_sun=int(receipt.get("fee", 0)),
    )  # fmt: skip
