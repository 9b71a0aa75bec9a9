"""Settings of ``atlas up``, declared once (:mod:`requester.settings_spec`): its options,
their ``ATLAS_...`` variables and ``atlas config show up`` come from these fields.

The variables mean what they mean for the programs it starts (``ATLAS_PROXY_PORT`` is the
proxy's port, ``ATLAS_ALLOW_PRIVATE_ORIGINS`` the edges' switch), except ``--edges``, a
count: its variable is ``ATLAS_UP_EDGES``, since ``ATLAS_EDGE`` names edge URLs, and
``--ledger``, a kind of ledger: ``ATLAS_UP_LEDGER``, since ``ATLAS_LEDGER`` is a ledger URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from requester.ledger_api import parse_ledger_url
from requester.setting_units import (
    DIRECTORY,
    SWITCH,
    WHOLE,
    Unit,
)
from requester.settings_spec import (
    setting,
)

LEDGER_KINDS = ("embedded", "tron")


def _ledger_kind(text: str) -> str:
    kind = text.strip()
    if kind.lower() in LEDGER_KINDS:
        return kind.lower()
    if kind.startswith(("tron+http://", "tron+https://")):
        parse_ledger_url(kind)
        return kind
    raise ValueError(f"{text[:60]!r} is not a ledger: embedded, tron, or the URL of a running "
                     "offline TRON node (tron+http://HOST:PORT)")  # fmt: skip


LEDGER_KIND: Unit[str] = Unit("", _ledger_kind, str, "EMBEDDED|TRON|URL")


@dataclass(frozen=True)
class UpSettings:
    data_dir: Path = setting(  # noqa: RUF009 (a declared setting)
        Path("atlas-data"), DIRECTORY, "where the network's ledger, edges, wallet and "
        "config.json are kept",
    )  # fmt: skip
    edges: int = setting(3, WHOLE, "edges to start", env="ATLAS_UP_EDGES", minimum=1,
                         maximum=16)  # fmt: skip
    proxy_port: int = setting(
        8080, WHOLE, "the browser proxy's port; the mobile API listens on the next one "
        "unless --api-port names another (0: free ports, chosen once and kept in the data "
        "dir)", minimum=0, maximum=65535,
    )  # fmt: skip
    api_port: int = setting(
        0, WHOLE, "the mobile API's and status page's port (0: the one kept in the data dir "
        "while the proxy keeps its port, else the proxy port + 1; with --proxy-port 0 a free "
        "port, kept)", minimum=0, maximum=65535,
    )  # fmt: skip
    allow_private_origins: bool = setting(False, SWITCH, "let edges fetch from private addresses")
    intercept: bool = setting(False, SWITCH, "the proxy opens HTTPS with its own CA")
    dht: bool = setting(
        False, SWITCH, "the edges join a DHT of their own (the first edge's node is the "
        "others' bootstrap); the proxy and atlas fetch find edges and providers through it",
    )  # fmt: skip
    ledger: str = setting(
        "embedded", LEDGER_KIND, "what the network settles on: embedded (atlas ledger serve, "
        "SQLite), tron (the channel contract on an offline TRON node it starts, atlas "
        "ledger tron-node) or tron+http://HOST:PORT (such a node already running)",
        env="ATLAS_UP_LEDGER",
    )  # fmt: skip
