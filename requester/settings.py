"""Where the requester keeps its things, and which edges and ledger it uses.

``ATLAS_HOME`` (default ``~/.atlas``) holds ``wallet.json`` (the encrypted
keystore), ``state.sqlite3`` (channels and issued vouchers) and
``config.json`` (edges and ledger, which ``atlas up`` writes; optionally
``deposit`` in BTT and ``channel_hours`` for new channels, the limits on
providers found through trackers, ``unknown_channels`` and ``unknown_deposit``
(see :mod:`requester.provider_trust`), and ``max_spend``, what one ``atlas
fetch`` may spend). Flags override the environment (``ATLAS_`` and the key in
capitals, for the limits), which overrides the file, which overrides built-in
defaults. docs/requester.md lists them all.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from requester.channel_manager import DepositPolicy
from requester.errors import SdkError
from requester.protocol import BTT_LOCAL, MalformedMessage, parse_amount
from requester.provider_trust import TrustPolicy

HOME_ENV = "ATLAS_HOME"
MAX_SPEND = BTT_LOCAL.one
"""What one ``atlas fetch`` may spend unless told otherwise: 1 BTT, about 1 GiB at an
edge's default price of 0.001 BTT per MiB."""


class ConfigError(SdkError):
    """``config.json`` holds something unusable; the message says what."""

    status = 500
    code = "config_invalid"


@dataclass(frozen=True)
class Settings:
    home: Path
    edges: list[str] = field(default_factory=list)
    ledger: str | None = None
    deposit: str | None = None
    """BTT to deposit in each new channel (``config.json`` key ``deposit``)."""
    channel_hours: float | None = None
    """Lifetime of each new channel (``config.json`` key ``channel_hours``)."""
    unknown_channels: str | None = None
    """Channels a download may open to payees of unknown providers (``unknown_channels``)."""
    unknown_deposit: str | None = None
    """BTT to deposit in each of those (``unknown_deposit``)."""
    max_spend: str | None = None
    """What one fetch may spend, in BTT or ``none`` (``max_spend``, ``ATLAS_MAX_SPEND``)."""

    def spend_limit(self, flag: str | None = None) -> int | None:
        """The spend ceiling of one fetch: ``flag`` (``--max-spend``), else the setting,
        else :data:`MAX_SPEND`; ``none`` means no ceiling."""
        text = flag if flag is not None else self.max_spend
        if text is None:
            return MAX_SPEND
        if text.strip().lower() == "none":
            return None
        what = "--max-spend" if flag is not None else "max_spend (ATLAS_MAX_SPEND)"
        return _btt(text, what, positive=False)

    def trust_policy(self) -> TrustPolicy:
        """The limits on providers other than the configured edges, per download."""
        default = TrustPolicy()
        channels, deposit = default.unknown_channels, default.unknown_deposit
        if self.unknown_channels is not None:
            raw = self.unknown_channels
            if not (raw.isascii() and raw.isdigit() and len(raw) <= 3):
                raise ConfigError(
                    f"unknown_channels (ATLAS_UNKNOWN_CHANNELS) must be a whole number 0..999, "
                    f"not {raw[:40]!r}"
                )
            channels = int(raw)
        if self.unknown_deposit is not None:
            deposit = _btt(self.unknown_deposit, "unknown_deposit (ATLAS_UNKNOWN_DEPOSIT)")
        return TrustPolicy(channels, deposit)

    def deposit_policy(self) -> DepositPolicy:
        """The channel-opening policy: defaults, overridden by ``config.json``."""
        default = DepositPolicy()
        deposit = default.deposit
        if self.deposit is not None:
            deposit = _btt(self.deposit, "config.json deposit", positive=False)
        hours = self.channel_hours
        duration = default.duration if hours is None else int(hours * 3600)
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
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".atlas")


def load_settings(edges: tuple[str, ...] = (), ledger: str | None = None) -> Settings:
    home = atlas_home()
    config: dict[str, object] = {}
    path = home / "config.json"
    if path.exists():
        try:
            loaded = json.loads(path.read_text())
        except ValueError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
        if isinstance(loaded, dict):
            config = loaded
    file_edges = config.get("edges")
    file_ledger = config.get("ledger")
    if edges:
        chosen = list(edges)
    elif isinstance(file_edges, list):
        chosen = [str(e) for e in file_edges]
    else:
        chosen = []
    deposit = config.get("deposit")
    hours = config.get("channel_hours")
    return Settings(
        home, chosen, ledger or (str(file_ledger) if file_ledger else None),
        None if deposit is None else str(deposit),
        float(hours) if isinstance(hours, int | float) else None,
        _setting(config, "unknown_channels"), _setting(config, "unknown_deposit"),
        _setting(config, "max_spend"),
    )  # fmt: skip


def _setting(config: dict[str, object], key: str) -> str | None:
    """``ATLAS_<KEY>`` from the environment, else ``key`` from ``config.json``, as text."""
    value = os.environ.get(f"ATLAS_{key.upper()}")
    if value is None:
        found = config.get(key)
        value = None if found is None else str(found)
    return value


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
    path = home / "config.json"
    path.write_text(json.dumps({"edges": edges, "ledger": ledger}, indent=2) + "\n")
    return path
