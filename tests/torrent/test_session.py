"""The edge's libtorrent session: what it may touch on the network and on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdn_edge.address_policy import BlockedAddress
from cdn_edge.torrent import TorrentSession, TorrentUnavailable, open_torrent, parse_source

V1 = "0123456789abcdef0123456789abcdef01234567"


async def test_defaults_stay_on_loopback_without_discovery(tmp_path: Path) -> None:
    async with TorrentSession(tmp_path) as ses:
        settings = ses.lt_settings()
        assert ses.listen_port > 0
    assert settings["listen_interfaces"] == "127.0.0.1:0"
    assert settings["dht_bootstrap_nodes"] == ""
    for name in ("enable_dht", "enable_lsd", "enable_upnp", "enable_natpmp"):
        assert settings[name] is False, name
    assert settings["allow_multiple_connections_per_ip"] is True
    assert settings["tick_interval"] == 50
    assert settings["enable_outgoing_utp"] is False  # dials over TCP (uTP capped ~15 MiB/s)
    assert settings["enable_incoming_utp"] is True


async def test_operator_settings_win(tmp_path: Path) -> None:
    async with TorrentSession(tmp_path, settings={"enable_outgoing_utp": True}) as ses:
        assert ses.lt_settings()["enable_outgoing_utp"] is True


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.7", "[::1]"])
async def test_private_peers_are_refused_by_default(tmp_path: Path, address: str) -> None:
    async with TorrentSession(tmp_path) as ses:
        with pytest.raises(BlockedAddress) as refused:
            await open_torrent(ses, parse_source(f"magnet:?xt=urn:btih:{V1}&x.pe={address}:6881"))
    assert refused.value.status == 403


async def test_stale_torrent_directories_are_cleared(tmp_path: Path) -> None:
    stale = tmp_path / "0123456789abcdef-00000003"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "x.bin").write_bytes(b"x")
    kept = tmp_path / "operator-notes"
    kept.mkdir()
    async with TorrentSession(tmp_path):
        assert not stale.exists()
        assert kept.exists()


async def test_closed_session_refuses(tmp_path: Path) -> None:
    ses = TorrentSession(tmp_path)
    await ses.start()
    await ses.close()
    await ses.close()  # twice is fine
    with pytest.raises(TorrentUnavailable, match="not running"):
        await open_torrent(ses, parse_source(V1))


async def test_too_many_torrents(tmp_path: Path) -> None:
    async with TorrentSession(tmp_path, max_torrents=1) as ses:
        first = ses.acquire(parse_source(V1))
        with pytest.raises(TorrentUnavailable, match="busy with 1 torrents") as refused:
            ses.acquire(parse_source("f" * 40))
        assert refused.value.status == 503
        ses.release(first)
