"""Settings of ``atlas ledger deploy``, declared once (:mod:`requester.settings_spec`): its
options and their ``ATLAS_...`` variables come from these fields.

The deployer's key is the Atlas wallet in ``ATLAS_HOME`` (its passphrase from
``ATLAS_PASSPHRASE`` or the ``passphrase`` file ``atlas up`` keeps), or, with
``--key-file``, a file holding a TRON private key as 64 hex digits (what TronLink and
tronpy export), so an operator can deploy from the account that holds the TRX.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from requester.ledger_api import parse_ledger_url
from requester.protocol import BTT, Asset, MalformedMessage, TronAddress
from requester.setting_units import Unit
from requester.settings import TRX, home_setting
from requester.settings_spec import setting

ASSET_NAMES: dict[str, Asset] = {"btt": BTT}
"""``--asset`` names: BTT, the TRC-20 token of docs/protocol.md section 4 (on any chain:
the token a deployment holds is ``--token``; the asset id names what vouchers pay in)."""
DEFAULT_FEE_LIMIT = 2_000 * 10**6
"""2000 TRX: a deployment costs about 1.5M energy (6.6 kB of code at 200 energy a byte,
plus the constructor), 315 TRX at mainnet's 210 sun per energy."""
_SPAN = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)")
_SECONDS_PER = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> int:
    match = _SPAN.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text[:40]!r} is not a duration (e.g. 6h, 90m, 1d, 3600)")
    return round(float(match.group(1)) * _SECONDS_PER[match.group(2)])


def _duration_text(seconds: int) -> str:
    for suffix, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


def _node(text: str) -> str:
    """The node's HTTP API: ``http(s)://HOST:PORT`` as is, a ledger URL's node otherwise."""
    return parse_ledger_url(text).endpoint


def _token(text: str) -> TronAddress:
    try:
        return TronAddress.parse(text.strip())
    except MalformedMessage as exc:
        raise ValueError(exc.message) from None


def _asset(text: str) -> Asset:
    try:
        return ASSET_NAMES[text.strip().lower()]
    except KeyError:
        raise ValueError(f"{text[:40]!r}: known assets are {', '.join(ASSET_NAMES)}") from None


def _chain_id(text: str) -> int | None:
    if not text.strip():
        return None
    value = int(text.strip(), 0)
    if not 0 <= value < 1 << 32:
        raise ValueError(f"{text[:40]!r} is not a TRON chain id (32 bits, e.g. 0x2b6653dc)")
    return value


DURATION: Unit[int] = Unit("", _duration, _duration_text, "DURATION")
NODE: Unit[str] = Unit("", _node, str, "URL")
TOKEN: Unit[TronAddress] = Unit("", _token, TronAddress.base58, "ADDRESS")
ASSET: Unit[Asset] = Unit("", _asset, lambda a: next(n for n, v in ASSET_NAMES.items() if v == a),
                          "NAME")  # fmt: skip
CHAIN_ID: Unit[int | None] = Unit("", _chain_id, lambda v: "" if v is None else hex(v), "ID")
OPTIONAL_PATH: Unit[Path | None] = Unit("", lambda t: Path(t) if t else None,
                                        lambda v: str(v or ""), "PATH")  # fmt: skip
KNOWN_CHAINS = {"https://api.trongrid.io": 0x2B6653DC, "https://nile.trongrid.io": 0xCD8690DC}


@dataclass(frozen=True)
class DeploySettings:
    node: str = setting(unit=NODE, help="the TRON node's HTTP API: http(s)://HOST:PORT, "
                        "tron+http://HOST:PORT, tron:nile or tron:mainnet")  # fmt: skip
    token: TronAddress = setting(unit=TOKEN, help="the TRC-20 token the channels hold (T...)")  # noqa: RUF009
    close_grace: int = setting(6 * 3600, DURATION, "time a payee keeps to redeem after the "
                               "payer asks to close (e.g. 6h, 90m, 1d)", minimum=1,
                               maximum=365 * 86400)  # fmt: skip
    asset: Asset = setting(BTT, ASSET,  # noqa: RUF009 (a declared setting) "the asset vouchers name (its URI's keccak256 is the "
                           "contract's assetId)")  # fmt: skip
    key_file: Path | None = setting(None, OPTIONAL_PATH,  # noqa: RUF009 (a declared setting) "a file holding the deployer's TRON "
                                    "private key (64 hex digits); default: the wallet in "
                                    "ATLAS_HOME")  # fmt: skip
    fee_limit: int = setting(DEFAULT_FEE_LIMIT, TRX, "most TRX the deployment may burn in "
                             "energy", env="ATLAS_DEPLOY_FEE_LIMIT", minimum=1,
                             maximum=15_000 * 10**6)  # fmt: skip
    chain_id: int | None = setting(None, CHAIN_ID, "the chain id the contract must report "
                                   "(default: mainnet's or Nile's for tron:mainnet and "
                                   "tron:nile, else the node's)")  # fmt: skip
    home: Path = home_setting()  # noqa: RUF009 (a declared setting, like setting())

    def expected_chain_id(self) -> int | None:
        return self.chain_id if self.chain_id is not None else KNOWN_CHAINS.get(self.node)
