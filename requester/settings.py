"""Where the requester keeps its things, and which edges and ledger it uses.

``ATLAS_HOME`` (default ``~/.atlas``) holds ``wallet.json`` (the encrypted
keystore), ``state.sqlite3`` (channels and issued vouchers) and
``config.json`` (edges and ledger; ``atlas up`` writes it). Flags override
the file; the file overrides built-in defaults.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

HOME_ENV = "ATLAS_HOME"


@dataclass(frozen=True)
class Settings:
    home: Path
    edges: list[str] = field(default_factory=list)
    ledger: str | None = None

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
            raise ValueError(f"{path} is not valid JSON: {exc}") from exc
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
    return Settings(home, chosen, ledger or (str(file_ledger) if file_ledger else None))


def write_config(home: Path, edges: list[str], ledger: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.json"
    path.write_text(json.dumps({"edges": edges, "ledger": ledger}, indent=2) + "\n")
    return path
