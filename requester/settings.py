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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from requester.channel_manager import DepositPolicy
from requester.errors import SdkError
from requester.protocol import BTT_LOCAL, MalformedMessage, parse_amount
from requester.provider_trust import TrustPolicy
from requester.setting_units import (
    BTT,
    BTT_LIMIT,
    BTT_TEXT,
    HOURS,
    OPTIONAL_TEXT,
    PATH,
    TEXT,
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
    ledger: str | None = setting(None, OPTIONAL_TEXT, "ledger URL; default from config",
                                 config_key="ledger")  # fmt: skip
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
        None, BTT, "refuse a provider whose price for a full chunk, its price per chunk "
        "included, is above this per MiB", config_key="max_price",
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


def write_config(home: Path, edges: list[str], ledger: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / CONFIG_FILE
    path.write_text(json.dumps({"edges": edges, "ledger": ledger}, indent=2) + "\n")
    return path
