"""Where the requester keeps its things, and which edges and ledger it uses.

``ATLAS_HOME`` (default ``~/.atlas``) holds ``wallet.json`` (the encrypted
keystore), ``state.sqlite3`` (channels and issued vouchers) and
``config.json`` (edges and ledger, which ``atlas up`` writes; optionally
``deposit`` in BTT and ``channel_hours`` for new channels). Flags override
the file; the file overrides built-in defaults.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from requester.channel_manager import DepositPolicy
from requester.protocol import BTT_LOCAL, MalformedMessage, parse_amount

HOME_ENV = "ATLAS_HOME"


class ConfigError(ValueError):
    """``config.json`` holds something unusable; the message says what."""


@dataclass(frozen=True)
class Settings:
    home: Path
    edges: list[str] = field(default_factory=list)
    ledger: str | None = None
    deposit: str | None = None
    """BTT to deposit in each new channel (``config.json`` key ``deposit``)."""
    channel_hours: float | None = None
    """Lifetime of each new channel (``config.json`` key ``channel_hours``)."""

    def deposit_policy(self) -> DepositPolicy:
        """The channel-opening policy: defaults, overridden by ``config.json``."""
        default = DepositPolicy()
        deposit = default.deposit
        if self.deposit is not None:
            try:
                deposit = parse_amount(self.deposit, BTT_LOCAL)
            except MalformedMessage as exc:
                raise ConfigError(f"config.json deposit: {exc.message}") from exc
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
    )  # fmt: skip


def write_config(home: Path, edges: list[str], ledger: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.json"
    path.write_text(json.dumps({"edges": edges, "ledger": ledger}, indent=2) + "\n")
    return path
