"""One libtorrent session per edge, shared by all torrent fetches, and the pump for its alerts.

libtorrent reports everything (metadata, verified pieces, piece reads, disk errors)
as alerts that must be popped from one place; alert objects die at the next pop.
So one asyncio task waits for alerts in a dedicated thread (``wait_for_alert``
releases the GIL), pops them on the event loop and turns each into plain state on
the torrent it concerns: a set of verified pieces, resolved read futures, an error.
Fetches wait on that state, never on libtorrent directly.

Settings go to the ``lt.session`` constructor, so DHT, LSD, UPnP and NAT-PMP are
off from the first tick unless the operator turns them on. Every torrent gets its
own directory under ``data_dir``; without seeding it is deleted when the last
fetch of it ends, since the chunk store then holds the bytes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import shutil
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import libtorrent as lt

from cdn_edge.address_policy import check_address
from cdn_edge.torrent.errors import TorrentUnavailable
from cdn_edge.torrent.session_guards import (
    all_in_global_class,
    private_peers_filter,
    thread_ids,
    yield_to_requests,
)
from cdn_edge.torrent.sources import MAX_TORRENT_FILE_BYTES, TorrentSpec, load_params
from cdn_edge.torrent.state import Torrent

__all__ = ["Torrent", "TorrentSession"]

log = logging.getLogger(__name__)

PUMP_WAIT_MS = 200
"""Longest the pump thread blocks; bounds how long ``close()`` waits for it."""
_DIR_NAME = re.compile(r"[0-9a-f]{16}-[0-9a-f]{8}")
_ALERTS = (
    lt.alert.category_t.status_notification
    | lt.alert.category_t.storage_notification
    | lt.alert.category_t.piece_progress_notification
    | lt.alert.category_t.error_notification
)


@dataclass(frozen=True)
class TorrentView:
    """One torrent as the dashboard lists it."""

    name: str
    infohash: str
    size: int
    """Bytes of the files wanted so far (0 until someone streams a file)."""
    done: int
    peers: int
    uploaded: int
    """Payload bytes seeded to peers, all time."""
    streams: int
    """Fetches and streams holding it now."""
    error: str


class TorrentSession:
    """The edge's libtorrent session; use ``async with`` or :meth:`start` / :meth:`close`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        listen_interfaces: str = "127.0.0.1:0",
        enable_dht: bool = False,
        enable_lsd: bool = False,
        enable_upnp: bool = False,
        enable_natpmp: bool = False,
        dht_bootstrap_nodes: str = "",
        seed: bool = False,
        use_trackers: bool = False,
        allow_private_peers: bool = False,
        max_torrents: int = 64,
        settings: lt.settings_pack | None = None,
        open_session: Callable[[lt.settings_pack], lt.session] = lt.session,
    ) -> None:
        """``seed`` keeps finished torrents uploading after their last fetch (off: removed).

        ``use_trackers`` lets libtorrent announce to trackers named by magnets and
        .torrent files (off: only DHT and given peers find peers, since a tracker URL
        from a stranger is a request the SSRF guard never sees). Web seeds are always
        dropped for the same reason. ``allow_private_peers`` lets the edge dial
        loopback and LAN peers (tests, local networks). ``settings`` overrides any
        libtorrent setting. ``open_session`` builds the session from the settings
        (cdn_edge/dht/node_state.py: one that starts the DHT with its saved node id).
        """
        self.data_dir = data_dir
        self.seed = seed
        self.use_trackers = use_trackers
        self.allow_private_peers = allow_private_peers
        self.max_torrents = max_torrents
        self._settings: lt.settings_pack = {
            "listen_interfaces": listen_interfaces,
            "enable_dht": enable_dht,
            "enable_lsd": enable_lsd,
            "enable_upnp": enable_upnp,
            "enable_natpmp": enable_natpmp,
            "dht_bootstrap_nodes": dht_bootstrap_nodes,
            "allow_multiple_connections_per_ip": True,
            "tick_interval": 50,
            "disk_write_mode": 0,  # pwrite, not mmap
            # Dial peers over TCP: uTP (LEDBAT) backs off on any queueing delay by design,
            # which held loopback and LAN downloads near 10-15 MiB/s. Peers may still use uTP
            # to reach the edge.
            "enable_outgoing_utp": False,
            # A torrent with no file wanted yet counts as finished, and finished torrents drop
            # seeds: keep those connections so a stream starts at once, and redial quickly.
            "close_redundant_connections": False,
            "min_reconnect_time": 1,
            "alert_mask": int(_ALERTS),
            "alert_queue_size": 10_000,
            "max_metadata_size": MAX_TORRENT_FILE_BYTES,
        }
        self._settings.update(settings or {})
        self._open_session = open_session
        self._ses: lt.session | None = None
        self._torrents: dict[lt.torrent_handle, Torrent] = {}
        self._by_hash: dict[bytes, Torrent] = {}
        self._doomed: dict[str, Path] = {}
        self._serial = itertools.count()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="lt-alerts")
        self._pump_task: asyncio.Task[None] | None = None
        self._closing = False

    async def __aenter__(self) -> TorrentSession:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        await asyncio.to_thread(self._prepare_dir)
        before = thread_ids()
        self._ses = self._open_session(self._settings)
        yield_to_requests(thread_ids() - before)
        if self._settings.get("upload_rate_limit"):  # a market edge's seeding share
            self._ses.set_peer_class_filter(all_in_global_class())
        if not self.allow_private_peers:
            self._ses.set_ip_filter(private_peers_filter())
        self._pump_task = asyncio.create_task(self._pump(), name="libtorrent-alerts")

    def _prepare_dir(self) -> None:
        """Create ``data_dir`` and drop torrent directories a crash left behind."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for child in self.data_dir.iterdir():
            if child.is_dir() and _DIR_NAME.fullmatch(child.name):
                shutil.rmtree(child, ignore_errors=True)

    @property
    def _lt(self) -> lt.session:
        if self._ses is None:
            raise TorrentUnavailable("the edge's torrent session is not running")
        return self._ses

    @property
    def listen_port(self) -> int:
        return self._lt.listen_port()

    @property
    def lt_session(self) -> lt.session:
        """libtorrent's session itself, for the edge's DHT (cdn_edge/dht); calls are thread-safe."""
        return self._lt

    def uploaded(self) -> int:
        """Payload bytes uploaded to peers (seeding) since the session started."""
        if self._ses is None:
            return 0
        with warnings.catch_warnings():  # status() is deprecated, session stats alerts are not
            warnings.simplefilter("ignore", DeprecationWarning)  # worth the plumbing for one sum
            return int(self._ses.status().total_payload_upload)

    def overview(self) -> list[TorrentView]:
        """The torrents in the session now, for the operator's dashboard (names come from
        strangers' metadata: the page escapes them)."""
        views = []
        for torrent in list(self._torrents.values()):
            st = torrent.handle.status()
            best = str(st.info_hashes.get_best())
            views.append(TorrentView(
                name=st.name or best, infohash=best,
                size=int(st.total_wanted), done=int(st.total_wanted_done), peers=int(st.num_peers),
                uploaded=int(st.all_time_upload), streams=torrent.users,
                error=str(torrent.error) if torrent.error is not None else "",
            ))  # fmt: skip
        return views

    def lt_settings(self) -> dict[str, object]:
        """libtorrent's settings in effect (for diagnostics, and tests that check them)."""
        return dict(self._lt.get_settings())

    def acquire(self, spec: TorrentSpec) -> Torrent:
        """The session's torrent for ``spec`` (added now, or shared), held until :meth:`release`."""
        if self._closing or self._ses is None:
            raise TorrentUnavailable("the edge's torrent session is not running")
        for peer in spec.peers:
            check_address(peer[0], allow_private=self.allow_private_peers)
        torrent = self._find(spec)
        if torrent is None:
            torrent = self._add(spec)
        elif torrent.error is not None:  # e.g. the disk was full: try again
            torrent.error = None
            torrent.handle.clear_error()
            torrent.handle.resume()
        for peer in spec.peers:
            if peer not in torrent.peers:
                torrent.peers.append(peer)
                torrent.handle.connect_peer(peer)
        torrent.users += 1
        return torrent

    def release(self, torrent: Torrent) -> None:
        """Drop one use; the last one removes the torrent and its files unless seeding."""
        torrent.users -= 1
        if torrent.handle not in self._torrents or self._closing:
            return  # already removed (evicted, or the session is closing)
        if torrent.users == 0 and not (self.seed and torrent.error is None):
            self._remove(torrent)

    def _find(self, spec: TorrentSpec) -> Torrent | None:
        for digest in (spec.v2, spec.v1):
            if digest is not None and digest in self._by_hash:
                return self._by_hash[digest]
        return None

    def _add(self, spec: TorrentSpec) -> Torrent:
        if len(self._torrents) >= self.max_torrents:
            idle = next((t for t in self._torrents.values() if t.users == 0), None)
            if idle is None:
                raise TorrentUnavailable(f"the edge is busy with {self.max_torrents} torrents")
            self._remove(idle)
        params = load_params(spec.metainfo) if spec.metainfo else lt.add_torrent_params()
        if spec.metainfo is None:
            v1 = lt.sha1_hash(spec.v1) if spec.v1 else lt.sha1_hash()
            v2 = lt.sha256_hash(spec.v2) if spec.v2 else lt.sha256_hash()
            params.info_hashes = lt.info_hash_t(v1, v2)
            if spec.name:
                params.name = spec.name
            params.trackers = list(spec.trackers) if self.use_trackers else []
        elif not self.use_trackers:
            params.trackers = []
        params.url_seeds = []
        params.http_seeds = []
        params.peers = list(spec.peers)
        save_dir = self.data_dir / f"{spec.infohash.hex()[:16]}-{next(self._serial):08x}"
        params.save_path = str(save_dir)
        flags = lt.torrent_flags
        # Nothing moves until a file is streamed, and no request goes out until its priority
        # has applied (upload mode, left by Torrent then). Sequential from the start: set only
        # later, libtorrent 2.1 picked the file's pieces at random (measured: loopback, 200 MiB,
        # issue 18); with it here and set again once the priority applied, they come in order.
        params.flags |= flags.default_dont_download | flags.upload_mode
        params.flags |= flags.sequential_download
        params.flags &= ~(flags.auto_managed | flags.paused | flags.duplicate_is_error)
        try:
            handle = self._lt.add_torrent(params)
        except RuntimeError as exc:
            raise TorrentUnavailable(f"libtorrent refused the torrent: {exc}") from None
        torrent = Torrent(handle, save_dir, spec.peers)
        self._torrents[handle] = torrent
        self.remember_hashes(torrent)
        for digest in (spec.v1, spec.v2):
            if digest is not None:
                self._by_hash[digest] = torrent
        return torrent

    def remember_hashes(self, torrent: Torrent) -> None:
        """Find the torrent by both hashes once metadata shows it is hybrid."""
        hashes = torrent.handle.info_hashes()
        if hashes.has_v1():
            self._by_hash.setdefault(hashes.v1.to_bytes(), torrent)
        if hashes.has_v2():
            self._by_hash.setdefault(hashes.v2.to_bytes(), torrent)

    def _remove(self, torrent: Torrent) -> None:
        torrent.fail(TorrentUnavailable("the torrent was removed from the edge"))
        self._torrents.pop(torrent.handle, None)
        for digest in [d for d, t in self._by_hash.items() if t is torrent]:
            del self._by_hash[digest]
        self._doomed[_hash_key(torrent.handle.info_hashes())] = torrent.save_dir
        self._lt.remove_torrent(torrent.handle, lt.options_t.delete_files)

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            await loop.run_in_executor(self._thread, self._lt.wait_for_alert, PUMP_WAIT_MS)
            self._drain()

    def _drain(self) -> None:
        for alert in self._lt.pop_alerts():
            try:
                self._dispatch(alert)
            except Exception:
                log.exception("handling %s", type(alert).__name__)

    def _dispatch(self, alert: lt.alert) -> None:
        if isinstance(alert, lt.torrent_deleted_alert | lt.torrent_delete_failed_alert):
            doomed = self._doomed.pop(_hash_key(alert.info_hashes), None)
            if doomed is not None:
                asyncio.get_running_loop().run_in_executor(None, _rmtree, doomed)
            return
        if not isinstance(alert, lt.torrent_alert):
            if isinstance(alert, lt.listen_failed_alert | lt.alerts_dropped_alert):
                log.warning("libtorrent: %s", alert.message())
            return
        torrent = self._torrents.get(alert.handle)
        if torrent is not None:
            if isinstance(alert, lt.metadata_received_alert):
                self.remember_hashes(torrent)
            torrent.on_alert(alert)

    async def close(self) -> None:
        """Remove every torrent (and its files unless seeding) and stop libtorrent."""
        if self._closing or self._ses is None:
            return
        self._closing = True
        for torrent in list(self._torrents.values()):
            torrent.fail(TorrentUnavailable("the edge is shutting down"))
            if not self.seed:
                self._remove(torrent)
        if self._pump_task is not None:
            await self._pump_task
        self._drain()
        doomed = list(self._doomed.values())
        box = [self._ses]
        self._ses = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, box.clear)  # lt.session's destructor blocks
        self._thread.shutdown()
        for path in doomed:
            await asyncio.to_thread(_rmtree, path)


def _hash_key(hashes: lt.info_hash_t) -> str:
    return f"{hashes.v1}/{hashes.v2}"


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
