"""Seeding draws from a market edge's capacity: libtorrent's upload is held to the free
slots' share, and what it uploaded is there for the market to count."""

from __future__ import annotations

from pathlib import Path

from cdn_edge.app import _torrent_session
from cdn_edge.config import EdgeConfig

MIB = 1 << 20


def config(data_dir: Path, capacity: int) -> EdgeConfig:
    return EdgeConfig(data_dir, "http://127.0.0.1:9", upload_capacity=capacity, slots=8,
                      free_slots=2, torrent_seed=True)  # fmt: skip


async def test_a_market_edge_limits_seeding_to_the_free_slots_share(tmp_path: Path) -> None:
    async with _torrent_session(config(tmp_path, 8 * MIB)) as ses:
        assert ses.lt_settings()["upload_rate_limit"] == 2 * MIB  # 8 MiB/s x 2 / 8
        assert ses.uploaded() == 0


async def test_without_a_market_seeding_is_not_limited(tmp_path: Path) -> None:
    async with _torrent_session(config(tmp_path, 0)) as ses:
        assert ses.lt_settings()["upload_rate_limit"] == 0  # libtorrent's 0: no limit
