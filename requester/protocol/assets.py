"""The assets Atlas can be paid in, and exact decimal amounts.

Amounts are integers in the asset's smallest unit everywhere in the protocol.
Text such as ``"1.5"`` is parsed digit by digit (never through ``float``) and
refused if it has more decimals than the asset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from requester.protocol.codec import U128_MAX
from requester.protocol.errors import MalformedMessage

TRON_MAINNET_CHAIN_ID = 0x2B6653DC
"""TRON mainnet's chain id as the TVM's ``block.chainid`` reports it."""

LOCAL_CHAIN_ID = 0x41544C53
"""Chain id of the embedded ledger (``"ATLS"``); never used by a public network."""


class AssetCode(IntEnum):
    """One byte on the wire names the asset."""

    BTT = 1
    BTT_LEGACY = 2
    BTT_LOCAL = 3


@dataclass(frozen=True, slots=True)
class Asset:
    code: AssetCode
    symbol: str
    decimals: int
    network: str
    chain_id: int
    token: str
    """TRC-20 contract address, TRC-10 token id, or a local name."""

    @property
    def uri(self) -> str:
        """Stable text name; its keccak256 is the ``asset`` field of a voucher."""
        return f"{self.network}:{self.token}"

    @property
    def one(self) -> int:
        """Base units in one whole token."""
        return int(10**self.decimals)


BTT = Asset(
    AssetCode.BTT,
    "BTT",
    18,
    "tron:trc20",
    TRON_MAINNET_CHAIN_ID,
    "TAFjULxiVgT4qWk6UZwjqwZXTSaGaqnVp4",
)
BTT_LEGACY = Asset(
    AssetCode.BTT_LEGACY, "BTTOLD", 6, "tron:trc10", TRON_MAINNET_CHAIN_ID, "1002000"
)
BTT_LOCAL = Asset(AssetCode.BTT_LOCAL, "BTT", 18, "atlas:local", LOCAL_CHAIN_ID, "BTT")
"""The embedded ledger's asset: same decimals as BTT so prices carry over unchanged."""

ASSETS: dict[AssetCode, Asset] = {a.code: a for a in (BTT, BTT_LEGACY, BTT_LOCAL)}


def asset_by_code(code: int) -> Asset:
    try:
        return ASSETS[AssetCode(code)]
    except ValueError as exc:
        raise MalformedMessage(f"unknown asset code {code}") from exc


_AMOUNT = re.compile(r"(?P<whole>[0-9]{1,40})(?:\.(?P<frac>[0-9]{1,40}))?")


def parse_amount(text: str, asset: Asset) -> int:
    """``"1.25"`` (optionally followed by the asset symbol) to base units, exactly."""
    cleaned = text.strip()
    if cleaned.upper().endswith(asset.symbol.upper()):
        cleaned = cleaned[: -len(asset.symbol)].strip()
    match = _AMOUNT.fullmatch(cleaned.replace("_", ""))
    if match is None:
        raise MalformedMessage(f"not an amount: {text[:80]!r} (expected e.g. 1.5 {asset.symbol})")
    frac = (match.group("frac") or "").rstrip("0")
    if len(frac) > asset.decimals:
        raise MalformedMessage(
            f"{text.strip()!r} has more than {asset.decimals} decimals, "
            f"the precision of {asset.symbol}"
        )
    units = int(match.group("whole")) * asset.one + int(frac.ljust(asset.decimals, "0") or "0")
    if units > U128_MAX:
        raise MalformedMessage(f"amount {text.strip()!r} is too large")
    return units


def format_amount(units: int, asset: Asset) -> str:
    """Base units to exact text with the symbol, e.g. ``"0.000125 BTT"``."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), asset.one)
    frac_text = str(frac).rjust(asset.decimals, "0").rstrip("0") if asset.decimals else ""
    number = f"{whole}.{frac_text}" if frac_text else str(whole)
    return f"{sign}{number} {asset.symbol}"
