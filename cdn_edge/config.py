"""Settings of one edge node, declared once: ``atlas edge serve``'s options, their
``ATLAS_...`` variables, ``--help`` and ``atlas config show edge`` are generated from the
fields below (:mod:`requester.settings_spec`). A setting is named as its flag; its value is
in base units (bytes, BTT base units, seconds), converted once when its text is read.
Fields without :func:`setting` are tuned in code, not by operators.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from requester.dht_nodes import DHT_NODES
from requester.listener_limits import ListenerLimits
from requester.protocol import BTT_LOCAL, DEFAULT_CHUNK_SIZE
from requester.setting_units import (
    BTT,
    DIRECTORY,
    GIB,
    GIB_SIZE,
    MIB,
    MIB_SIZE,
    POSITIVE_BTT,
    RATE,
    SECONDS,
    SWITCH,
    TEXT,
    WHOLE,
    Unit,
)
from requester.settings_spec import (
    InvalidSetting,
    header_timeout_setting,
    max_connections_setting,
    setting,
)


def _ratio(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]!r} is not a finite number")
    return value


RATIO: Unit[float] = Unit("x", _ratio, lambda v: f"{v:g}", "NUMBER")
"""A multiple (``10``, ``2.5``)."""


@dataclass(frozen=True)
class EdgeConfig:
    data_dir: Path = setting(  # noqa: RUF009 (a required setting: no default to give)
        unit=DIRECTORY, help="where the edge keeps its keys, chunks and payments"
    )
    ledger: str = setting(unit=TEXT, help="ledger URL")
    host: str = setting("127.0.0.1", TEXT, "address the HTTP and tunnel listeners bind")
    port: int = setting(0, WHOLE, "HTTP port; 0 picks a free port", minimum=0, maximum=65535)
    trackers: tuple[str, ...] = setting(
        (), TEXT, "tracker URL to announce to (repeat)",
        flag="--tracker", env="ATLAS_TRACKER", multiple=True,
    )  # fmt: skip
    """A repeated flag names one tracker each; the field holds them all."""
    public_url: str | None = setting(None, TEXT, "URL others reach this edge at")
    """Defaults to the address it listens on."""
    price: int = setting(
        BTT_LOCAL.one // 1000, BTT, "price per MiB sent on the wire; with --upload-capacity, "
        "the market's reserve (the lowest price a paid slot sells at)", aliases=("--reserve",),
    )  # fmt: skip
    """Base units per MiB sent on the wire: the fixed price, or the market's reserve."""
    upload_capacity: int = setting(
        0, RATE, "upload capacity the market shares out (8MiB/s, 512KiB/s); 0: unlimited, "
        "no auction, the fixed --price and free allowance",
    )  # fmt: skip
    """Bytes per second; 0 (``auction.UNLIMITED``) runs no market (docs/market.md)."""
    slots: int = setting(8, WHOLE, "upload slots the capacity is cut into", minimum=1,
                         maximum=1024)  # fmt: skip
    free_slots: int = setting(
        2, WHOLE, "slots nobody can buy: the free lane (1 to --slots)", minimum=1, maximum=1024
    )
    round_seconds: float = setting(
        10.0, SECONDS, "length of a market round (bids clear at its end)", minimum=0.1,
        maximum=3600,
    )  # fmt: skip
    price_per_chunk: int = 0
    allow_private_origins: bool = setting(
        False, SWITCH, "allow origins on loopback/private addresses and any port "
        "(tests, local networks)",
    )  # fmt: skip
    free_mib: int = setting(
        4 * MIB, MIB_SIZE, "free allowance per requester per 10 minutes (0 turns it off)"
    )
    """Bytes each requester may take without paying per ``free_window``."""
    free_window: float = 600.0
    store_cap_gib: int = setting(10 * GIB, GIB_SIZE, "chunk store size cap")
    """In bytes."""
    max_response_bytes: int = 4 * 1024 * MIB
    origin_timeout: float = 300.0
    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunk_wait: float = setting(
        30.0, SECONDS, "how long a chunk request or run waits for a chunk still arriving from "
        "the origin (then: 503 chunk_not_ready, or a run's NOT_READY trailer)", minimum=0.1,
        maximum=40,
    )  # fmt: skip
    """Below the 45 s of silence a requester allows a chunk or run request
    (``requester.chunk_request.CHUNK_TIMEOUT``): its answer comes before the requester gives up."""
    quote_validity: int = 300
    payment_interval: int = 16
    max_transfers_per_client: int = 32
    settle_interval: float = setting(
        60.0, SECONDS, "time between settlement rounds (each redeems what is due)", minimum=0.1
    )
    history_interval: float = setting(
        60.0, SECONDS, "time between the dashboard's history samples (GET /)", minimum=1.0
    )
    redeem_fee_ratio: float = setting(
        10.0, RATIO, "a round redeems a channel once the redeem brings this many times its fee "
        "(near expiry and on stop: more than the fee)", minimum=0,
    )  # fmt: skip
    btt_per_trx: int = setting(
        500_000 * BTT_LOCAL.one, BTT, "your estimate of what 1 TRX is worth in BTT, to weigh "
        "a redeem's fee (energy burned in TRX) against what it brings; 0 counts fees as free",
    )  # fmt: skip
    """In BTT base units per TRX. The default is an estimate of the market (late 2025)."""
    tunnel_port: int = setting(
        0, WHOLE, "port of the CONNECT tunnel listener on --host (0: any free)",
        minimum=0, maximum=65535,
    )  # fmt: skip
    no_tunnel: bool = setting(False, SWITCH, "run no tunnel listener")
    tunnel_unit: int = 64 * 1024
    """Tunnel bytes (both directions together) one paid unit covers."""
    max_tunnels_per_client: int = setting(64, WHOLE, "open tunnels per client address", minimum=1)
    max_tunnels: int = setting(1024, WHOLE, "open tunnels in all", minimum=1)
    tunnel_pay_timeout: float = setting(
        30.0, SECONDS, "time a tunnel waits for payment once its paid bytes are used up",
        minimum=0.1,
    )  # fmt: skip
    tunnel_idle_timeout: float = setting(
        300.0, SECONDS, "time without a byte before a tunnel closes", minimum=0.1
    )
    tunnel_connect_timeout: float = 10.0
    torrent_listen: str | None = setting(
        None, TEXT, "libtorrent listen interfaces (default: HOST:0)"
    )
    no_torrents: bool = setting(False, SWITCH, "do not fetch torrent content")
    torrent_discovery: bool = setting(
        False, SWITCH, "turn on DHT, LSD, UPnP and NAT-PMP (off by default)"
    )
    torrent_seed: bool = setting(False, SWITCH, "keep seeding fetched torrents")
    dht: bool = setting(False, SWITCH, "join the BitTorrent DHT: publish this edge's advert and "
                        "announce it and its content (docs/edge.md, Discovery)")  # fmt: skip
    dht_bootstrap: str = setting("", DHT_NODES, "DHT nodes to bootstrap from (HOST:PORT,...); "
                                 "none: only nodes that contact this one")  # fmt: skip
    dht_allow_private: bool = setting(
        False, SWITCH, "let the DHT use loopback and LAN nodes (test and local networks)"
    )
    no_sibling_caches: bool = setting(
        False, SWITCH, "with --dht: neither announce the URLs held fresh nor ask the edges "
        "announcing a URL for their copy (docs/edge.md, Sibling caches)",
    )  # fmt: skip
    torrent_cap_gib: int = setting(
        4 * GIB, GIB_SIZE, "largest file taken from a torrent", minimum=GIB // 1000
    )
    """In bytes."""
    torrent_metadata_timeout: float = 30.0
    header_timeout: float = header_timeout_setting()
    """Also the time a client has to send its whole CONNECT request head."""
    max_connections_per_address: int = max_connections_setting()
    """Also the cap of the tunnel port."""
    replica_unknown_channels: int = setting(
        2, WHOLE, "new channels per replicated content to payees of providers other than "
        "the trackers", minimum=0,
    )  # fmt: skip
    """Channels replicating one content may open (or top up) before one of them delivered."""
    replica_unknown_deposit: int = setting(
        BTT_LOCAL.one // 10, POSITIVE_BTT,
        "deposit of each such channel, and the most such a provider may ask per chunk",
    )  # fmt: skip
    replica_unknown_channels_per_hour: int = setting(
        10, WHOLE, "such channels for all contents together, over any hour", minimum=0
    )
    """Contents cost an attacker nothing to invent."""

    def __post_init__(self) -> None:
        if self.free_slots > self.slots:
            raise InvalidSetting(
                f"--free-slots ({self.free_slots}) cannot exceed --slots ({self.slots})"
            )

    @property
    def torrent_interfaces(self) -> str | None:
        """libtorrent's listen interfaces; None: torrent fetching is off."""
        return None if self.no_torrents else (self.torrent_listen or f"{self.host}:0")

    @property
    def listener_limits(self) -> ListenerLimits:
        return ListenerLimits(self.header_timeout, self.max_connections_per_address)
