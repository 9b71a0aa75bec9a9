"""Settings of ``atlas ledger tron-node``, declared once (:mod:`requester.settings_spec`):
its options, their ``ATLAS_...`` variables and ``atlas config show`` come from these fields."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from requester.listener_limits import ListenerLimits
from requester.protocol import MalformedMessage, TronAddress
from requester.setting_units import TEXT, WHOLE, Unit
from requester.settings_spec import header_timeout_setting, max_connections_setting, setting

TRON_MAINNET = 0x2B6653DC
SUN_PER_TRX = 10**6
BTT_UNITS = 10**18
"""Base units of one test BTT (18 decimals, as TRC-20 BTT)."""


@dataclass(frozen=True)
class Funding:
    """TRX (in sun) and test BTT (in base units) the node gives an address at start."""

    address: TronAddress
    sun: int
    btt: int

    def text(self) -> str:
        return (
            f"{self.address}={Decimal(self.sun) / SUN_PER_TRX:f},{Decimal(self.btt) / BTT_UNITS:f}"
        )


def whole_units(text: str, scale: int, what: str) -> int:
    """``text`` (a decimal number of TRX or BTT) in base units, exactly, or ValueError."""
    try:
        units = Decimal(text.strip()) * scale
    except InvalidOperation:
        raise ValueError(f"{text[:40]!r} is not an amount of {what}") from None
    if not units.is_finite() or units < 0 or units != units.to_integral_value():
        raise ValueError(f"{text[:40]!r} is not an amount of {what} (at most "
                         f"{len(str(scale)) - 1} decimals, not negative)")  # fmt: skip
    return int(units)


def _funding(text: str) -> Funding:
    address, _, amounts = text.strip().partition("=")
    trx, _, btt = amounts.partition(",")
    if not amounts:
        raise ValueError(f"{text[:80]!r} is not ADDR=TRX,BTT")
    try:
        who = TronAddress.parse(address)
    except MalformedMessage as exc:
        raise ValueError(exc.message) from None
    return Funding(
        who, whole_units(trx, SUN_PER_TRX, "TRX"), whole_units(btt or "0", BTT_UNITS, "BTT")
    )


def _chain_id(text: str) -> int:
    folded = text.strip().lower()
    try:
        value = int(folded, 16) if folded.startswith("0x") else int(folded)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a chain id (0x2b6653dc or 728126428)") from None
    if not 0 < value < 1 << 32:
        raise ValueError(
            "a TRON chain id is 4 bytes (block.chainid is the genesis block id's last 4)"
        )
    return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> int:
    found = _DURATION.match(text.lower())
    if found is None:
        raise ValueError(f"{text[:40]!r} is not a duration (6h, 90m, 3600s)")
    return int(Decimal(found.group(1)) * _SECONDS[found.group(2)])


def _duration_text(seconds: int) -> str:
    for suffix, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


FUNDING: Unit[Funding] = Unit("", _funding, Funding.text, "ADDR=TRX,BTT")
CHAIN_ID: Unit[int] = Unit("", _chain_id, lambda v: f"{v:#x}", "ID")
DURATION: Unit[int] = Unit("", _duration, _duration_text, "DURATION")


@dataclass(frozen=True)
class TronNodeSettings:
    host: str = setting("127.0.0.1", TEXT, "address to listen on")
    port: int = setting(0, WHOLE, "0 picks a free port", minimum=0, maximum=65535)
    chain_id: int = setting(
        TRON_MAINNET, CHAIN_ID, "what block.chainid reads (TRON mainnet's by default)"
    )
    fund: tuple[Funding, ...] = setting(
        (), FUNDING, "give ADDR TRX and test BTT at start (repeat)", multiple=True
    )
    close_grace: int = setting(
        6 * 3600, DURATION, "closeGrace of the channel contracts deployed at start",
        minimum=1, maximum=365 * 86400,
    )  # fmt: skip
    header_timeout: float = header_timeout_setting()
    max_connections_per_address: int = max_connections_setting()

    @property
    def listener_limits(self) -> ListenerLimits:
        return ListenerLimits(self.header_timeout, self.max_connections_per_address)
