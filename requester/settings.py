"""Where the requester keeps its things, and which edges and ledger it uses.

``ATLAS_HOME`` (default ``~/.atlas``) holds ``wallet.json`` (the encrypted
keystore), ``state.sqlite3`` (channels and issued vouchers) and
``config.json`` (edges and ledger, which ``atlas up`` writes; optionally
``deposit`` in BTT and ``channel_hours`` for new channels, the limits on
providers found through trackers, ``unknown_channels`` and ``unknown_deposit``
(see :mod:`requester.provider_trust`), and ``max_spend``, what one ``atlas
fetch`` may spend). :class:`Settings` declares each one once
(:mod:`requester.settings_spec`): a flag overrides the environment (``ATLAS_`` and the
name in capitals), which overrides the file, which overrides the default; ``atlas config
show`` prints them and where each came from. docs/requester.md lists them all.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from requester.channel_policy import DepositPolicy
from requester.dht_nodes import DHT_NODES
from requester.errors import SdkError
from requester.ledger_urls import DEFAULT_FEE_LIMIT, parse_ledger_url
from requester.protocol import BTT_LOCAL, MalformedMessage, PayerKey, parse_amount
from requester.provider_trust import TrustPolicy
from requester.setting_units import (
    BTT,
    BTT_LIMIT,
    BTT_TEXT,
    HOURS,
    OPTIONAL_TEXT,
    PATH,
    RATE,
    TEXT,
    Unit,
    btt_text,
)
from requester.settings_spec import (
    ConfigFile,
    InvalidSetting,
    Origin,
    Source,
    resolve,
    setting,
)

if TYPE_CHECKING:
    import aiohttp

    from requester.ledger_api import Ledger

HOME_ENV = "ATLAS_HOME"
CONFIG_FILE = "config.json"
DEFAULT_DEPOSIT = DepositPolicy()
DEFAULT_TRUST = TrustPolicy()
MAX_SPEND = BTT_LOCAL.one
"""What one ``atlas fetch`` may spend unless told otherwise: 1 BTT, about 1 GiB at an
edge's default price of 0.001 BTT per MiB."""


class ConfigError(SdkError):
    """``config.json`` holds something unusable; the message says what."""

    status = 500
    code = "config_invalid"


def _sun(text: str) -> int:
    """TRX (``"50"``, ``"12.5 TRX"``) as sun, exactly (6 decimals)."""
    number = text.strip().removesuffix("TRX").strip()
    match = re.fullmatch(r"([0-9]{1,12})(?:\.([0-9]{1,6}))?", number)
    if match is None:
        raise ValueError(f"{text[:40]!r} is not an amount of TRX (e.g. 50 or 12.5)")
    return int(match.group(1)) * 10**6 + int((match.group(2) or "").ljust(6, "0"))


def _trx_text(sun: int) -> str:
    whole, frac = divmod(sun, 10**6)
    return f"{whole}.{frac:06d}".rstrip("0").rstrip(".")


TRX: Unit[int] = Unit("TRX", _sun, _trx_text, "TRX")
"""An amount of TRX, held in sun."""


def _ledger_url(text: str) -> str | None:
    if not text.strip():
        return None
    parse_ledger_url(text)  # a ValueError says which forms are ledger URLs
    return text.strip()


def _target_rate(text: str) -> int | None:
    if text.strip().lower() in ("", "none"):
        return None
    rate = RATE.parse(text)
    if rate <= 0:
        raise ValueError("a target rate is more than 0 (or none: as fast as it goes)")
    return rate


TARGET_RATE: Unit[int | None] = Unit(
    "", _target_rate, lambda v: "none" if v is None else RATE.text(v), "RATE"
)
"""A rate like ``10MiB/s``, or ``none``."""


LEDGER_URL: Unit[str | None] = Unit("", _ledger_url, lambda v: v or "", "URL")
"""A ledger URL, checked; empty means none (``"ledger": ""`` in config.json)."""


def default_home() -> Path:
    return Path.home() / ".atlas"


def home_setting() -> Any:
    """``ATLAS_HOME``: declared alike by every program that reads the wallet or config.json."""
    return setting(unit=PATH, help="where the wallet, channels and config.json are",
                   flag=False, env=HOME_ENV, default_factory=default_home)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """The requester's settings (``atlas fetch``, ``atlas channel``, ``atlas wallet``).

    The amounts the library reads later (deposit, the limits) are kept as written and
    checked here, so their errors keep naming where they were set.
    """

    home: Path = home_setting()  # noqa: RUF009 (a declared setting, like setting())
    edges: tuple[str, ...] = setting(
        (), TEXT, "edge URL (repeat); default from config", flag="--edge", env="ATLAS_EDGE",
        config_key="edges", multiple=True,
    )  # fmt: skip
    """A repeated flag names one edge each; config.json's key (written by ``atlas up``)
    and the field hold them all."""
    bootstrap: str = setting("", DHT_NODES, "find edges (without --edge) and providers "
                             "through the DHT node at HOST:PORT[,...] (docs/edge.md, Discovery)",
                             config_key="bootstrap")  # fmt: skip
    ledger: str | None = setting(None, LEDGER_URL, "ledger URL; default from config",
                                 config_key="ledger")  # fmt: skip
    """``http://HOST:PORT`` (the embedded ledger), ``tron+http://HOST:PORT``, ``tron:nile``
    or ``tron:mainnet`` (``requester/ledger_api.py``)."""
    ledger_contract: str | None = setting(
        None, OPTIONAL_TEXT, "TRON channel contract (T...) of a tron: ledger", flag=False,
        config_key="ledger_contract",
    )  # fmt: skip
    tron_fee_limit: int = setting(
        DEFAULT_FEE_LIMIT, TRX, "most TRX one TRON transaction may burn in energy", flag=False,
        config_key="tron_fee_limit", minimum=1, maximum=15_000 * 10**6,
    )  # fmt: skip
    deposit: str = setting(
        btt_text(DEFAULT_DEPOSIT.deposit), BTT_TEXT, "what to lock in each new channel",
        config_key="deposit",
    )  # fmt: skip
    channel_hours: float = setting(
        DEFAULT_DEPOSIT.duration / 3600, HOURS, "lifetime of each new channel",
        config_key="channel_hours", aliases=("--hours",), minimum=0.5, maximum=24 * 365,
    )  # fmt: skip
    unknown_channels: str = setting(
        str(DEFAULT_TRUST.unknown_channels), TEXT,
        "channels a download may open to payees of providers found through trackers",
        flag=False, config_key="unknown_channels",
    )  # fmt: skip
    unknown_deposit: str = setting(
        btt_text(DEFAULT_TRUST.unknown_deposit), BTT_TEXT, "deposit of each of those",
        flag=False, config_key="unknown_deposit",
    )  # fmt: skip
    max_spend: str = setting(
        btt_text(MAX_SPEND), BTT_LIMIT, "stop before spending more than this (or none)",
        config_key="max_spend",
    )  # fmt: skip
    """What one fetch may spend, in BTT or ``none``."""
    max_price: int | None = setting(
        None, BTT, "the most paid per MiB, and the bid on market edges (0: free lanes only); "
        "a provider without a market asking more for a full chunk is dropped",
        config_key="max_price",
    )  # fmt: skip
    target_rate: int | None = setting(
        None, TARGET_RATE, "buy paid slots (cheapest first) until downloads reach this rate, "
        "like 10MiB/s; none: every slot within --max-price", config_key="target_rate",
    )  # fmt: skip

    def spend_limit(self) -> int | None:
        """The spend ceiling of one fetch in base units; None (``none``): no ceiling."""
        if self.max_spend.strip().lower() == "none":
            return None
        return _btt(self.max_spend, "max_spend (ATLAS_MAX_SPEND)", positive=False)

    def trust_policy(self) -> TrustPolicy:
        """The limits on providers other than the configured edges, per download."""
        raw = self.unknown_channels
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 3):
            raise ConfigError(
                f"unknown_channels (ATLAS_UNKNOWN_CHANNELS) must be a whole number 0..999, "
                f"not {raw[:40]!r}"
            )
        deposit = _btt(self.unknown_deposit, "unknown_deposit (ATLAS_UNKNOWN_DEPOSIT)")
        return TrustPolicy(int(raw), deposit)

    def deposit_policy(self) -> DepositPolicy:
        """The channel-opening policy: deposit and lifetime of each new channel."""
        deposit = _btt(self.deposit, "config.json deposit", positive=False)
        duration = int(self.channel_hours * 3600)
        if deposit <= 0 or not 1800 <= duration <= 365 * 24 * 3600:
            raise ConfigError("config.json: deposit must be > 0, channel_hours 0.5..8760")
        return DepositPolicy(deposit, duration)

    def open_ledger(self, session: aiohttp.ClientSession, key: PayerKey | None = None) -> Ledger:
        """The configured ledger (``ledger`` must be set); on TRON, ``key`` signs and the
        transaction journal lives in ``home``."""
        from requester.ledger_api import open_ledger  # aiohttp: not for --help

        assert self.ledger is not None
        return open_ledger(
            self.ledger, session, key=key, data_dir=self.home,
            contract=self.ledger_contract, fee_limit=self.tron_fee_limit,
        )  # fmt: skip

    @property
    def wallet_path(self) -> Path:
        return self.home / "wallet.json"

    @property
    def state_path(self) -> Path:
        return self.home / "state.sqlite3"


def atlas_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or default_home())


def read_config(home: Path | None = None) -> ConfigFile | None:
    """``config.json`` in ``home`` (default ``$ATLAS_HOME``), or None if there is none."""
    path = (home or atlas_home()) / CONFIG_FILE
    if not path.exists():
        return None
    try:
        loaded = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    return ConfigFile(path, loaded if isinstance(loaded, dict) else {})


def load_settings(edges: tuple[str, ...] = (), ledger: str | None = None) -> Settings:
    """Settings from ``edges``/``ledger`` (flags), the environment, config.json, defaults."""
    given: dict[str, tuple[object, Origin]] = {}
    if edges:
        given["edges"] = (tuple(edges), Origin(Source.FLAG, "--edge"))
    if ledger:
        given["ledger"] = (ledger, Origin(Source.FLAG, "--ledger"))
    try:
        return resolve(Settings, given, os.environ, read_config()).settings
    except InvalidSetting as exc:
        raise ConfigError(str(exc)) from exc


def _btt(text: str, what: str, *, positive: bool = True) -> int:
    """An amount of BTT from the settings; ``positive``: zero is refused too."""
    try:
        amount = parse_amount(text, BTT_LOCAL)
    except MalformedMessage as exc:
        raise ConfigError(f"{what}: {exc.message}") from exc
    if positive and amount <= 0:
        raise ConfigError(f"{what} must be more than 0 BTT")
    return amount


def write_config(home: Path, edges: list[str], ledger: str, bootstrap: str = "") -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / CONFIG_FILE
    config = {"edges": edges, "ledger": ledger} | ({"bootstrap": bootstrap} if bootstrap else {})
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path
