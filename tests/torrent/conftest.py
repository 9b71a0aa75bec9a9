"""A real libtorrent seeder process (tests/torrent_seeder.py) and an edge torrent session.

Both sides run with DHT, LSD, UPnP and NAT-PMP off and bind 127.0.0.1 only; the
session finds the seeder solely through peers the tests name (magnet ``x.pe`` or
the ``peers`` argument), so no packet leaves loopback.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from cdn_edge.torrent import TorrentSession
from tests.origin_server import pattern
from tests.processes import Running, start_edge, start_ledger, start_program

SEEDER = Path(__file__).resolve().parents[1] / "torrent_seeder.py"
MAIN_TORRENTS = [
    "single:v1:1000003",
    "multi:hybrid:700001",
    "multi:v1:300007",
    "multi:v2:200003",
]
STREAMED_SIZE = 2 << 20
STREAM_RATE = 1 << 20
"""The rate-limited torrent: 128 pieces of 16 KiB at 1 MiB/s, about 2 s in all."""


def start_seeder(directory: Path, *extra: str) -> Running:
    return start_program([sys.executable, str(SEEDER), "--dir", str(directory), *extra])


@pytest.fixture(scope="module")
def seeder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    makes = [arg for spec in MAIN_TORRENTS for arg in ("--make", spec)]
    running = start_seeder(tmp_path_factory.mktemp("seeder"), *makes, "--piece-size", "32768")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A free edge (4 GiB of free allowance) on a ledger of its own, one per test module."""
    ledger = start_ledger(tmp_path_factory.mktemp("ledger"))
    running = start_edge(tmp_path_factory.mktemp("edge"), ledger.url, "--free-mib", "4096")
    yield running
    running.stop()
    ledger.stop()


@pytest.fixture(scope="module")
def slow_seeder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start_seeder(
        tmp_path_factory.mktemp("slow-seeder"),
        "--make", f"single:hybrid:{STREAMED_SIZE}",
        "--piece-size", "16384",
        "--rate-limit", str(STREAM_RATE),
    )  # fmt: skip
    yield running
    running.stop()


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[TorrentSession]:
    """The edge's session with its defaults, except that loopback peers are allowed."""
    async with TorrentSession(tmp_path / "torrents", allow_private_peers=True) as ses:
        yield ses


def torrent(running: Running, name_prefix: str) -> dict[str, Any]:
    """The seeder's record of the torrent whose name starts with ``name_prefix``."""
    torrents: list[dict[str, Any]] = running.ready["torrents"]  # type: ignore[assignment]
    return next(t for t in torrents if str(t["name"]).startswith(name_prefix))


def peer(running: Running) -> tuple[str, int]:
    host, port = running.url.rsplit(":", 1)
    return host, int(port)


def expected_sha256(file: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    size, offset = int(file["size"]), int(file["pattern_offset"])
    for start in range(0, size, 1 << 20):
        digest.update(pattern(offset + start, min(1 << 20, size - start)))
    return digest.hexdigest()
