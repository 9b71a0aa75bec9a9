"""Settings of one edge node; one name per setting in flags, env and code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from requester.protocol import BTT_LOCAL, DEFAULT_CHUNK_SIZE

MIB = 1 << 20


@dataclass(frozen=True)
class EdgeConfig:
    data_dir: Path
    ledger_url: str
    trackers: tuple[str, ...] = ()
    public_url: str | None = None
    """URL other nodes reach this edge at; defaults to the address it listens on."""
    price_per_mib: int = 10**15
    """Base units per MiB sent on the wire (default 0.001 BTT)."""
    price_per_chunk: int = 0
    allow_private_origins: bool = False
    free_bytes: int = 4 * MIB
    """Bytes each requester may take without paying per ``free_window``; 0 turns it off."""
    free_window: float = 600.0
    store_cap_bytes: int = 10 * 1024 * MIB
    max_response_bytes: int = 4 * 1024 * MIB
    origin_timeout: float = 300.0
    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunk_wait: float = 30.0
    """How long a chunk request waits for a chunk of a live fetch to arrive."""
    quote_validity: int = 300
    payment_interval: int = 16
    max_transfers_per_client: int = 32
    settle_interval: float = 60.0
    tunnel_host: str = "127.0.0.1"
    """Address the CONNECT tunnel listener binds (the CLI's ``--host``)."""
    tunnel_port: int | None = 0
    """Port of the tunnel listener; 0 picks a free one, None turns tunnels off."""
    tunnel_unit: int = 64 * 1024
    """Tunnel bytes (both directions together) one paid unit covers."""
    max_tunnels_per_client: int = 64
    max_tunnels: int = 1024
    tunnel_pay_timeout: float = 30.0
    """A tunnel that has used up what was paid closes if nothing more is paid in this time."""
    tunnel_idle_timeout: float = 300.0
    tunnel_connect_timeout: float = 10.0
    torrent_listen: str | None = "127.0.0.1:0"
    """libtorrent's listen interfaces; None turns torrent fetching off."""
    torrent_discovery: bool = False
    """DHT, LSD, UPnP and NAT-PMP: off unless the operator turns them on."""
    torrent_seed: bool = False
    """Keep uploading finished torrents to the swarm (off: removed after the fetch)."""
    max_torrent_file_bytes: int = 4 * 1024 * MIB
    torrent_metadata_timeout: float = 30.0
    tunnel_head_timeout: float = 10.0
    """Time a client has to send its whole CONNECT request head (``--header-timeout``)."""
    max_tunnel_connections_per_address: int = 256
    """Connections one address may hold on the tunnel port (``--max-connections-per-address``)."""
    replica_unknown_channels: int = 2
    """Channels replicating one content may open (or top up) to payees of providers other
    than the trackers, before one of them delivered (``--replica-unknown-channels``)."""
    replica_unknown_deposit: int = BTT_LOCAL.one // 10
    """Deposit of each such channel, and the most such a provider may ask per chunk
    (``--replica-unknown-deposit``, in BTT)."""
    replica_unknown_channels_per_hour: int = 10
    """Such channels for all contents together, over any hour
    (``--replica-unknown-channels-per-hour``): contents cost an attacker nothing to invent."""
