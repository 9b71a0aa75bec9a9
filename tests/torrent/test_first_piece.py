"""The head of a torrent file goes out while its first piece downloads (issue 18).

Before, ``TorrentHandle.stream`` returned (and the edge signed and sent the manifest
head) only once the file's first piece was verified, so the requester's round trip
for the first chunk came after the piece instead of during it. Now it returns as soon
as a connected peer has that piece. The seeder here sends 16 KiB a second, so its
first 16 KiB piece takes about a second: no clock in the assertions, only whether a
piece was verified when the stream opened, and the bytes that came after.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libtorrent as lt
import pytest

from cdn_edge.torrent import TorrentSession, TorrentTimeout, open_torrent, parse_source
from tests.origin_server import pattern
from tests.processes import Running
from tests.torrent.conftest import start_seeder, torrent
from tests.torrent_seeder import session_settings

GiB = 1 << 30
PIECE = 16 << 10
SIZE = 16 * PIECE


@pytest.fixture(scope="module")
def crawling_seeder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start_seeder(
        tmp_path_factory.mktemp("crawling-seeder"),
        "--make", f"single:hybrid:{SIZE}",
        "--piece-size", str(PIECE),
        "--rate-limit", str(PIECE),
    )  # fmt: skip
    yield running
    running.stop()


async def test_the_stream_opens_before_its_first_piece_is_verified(
    session: TorrentSession, crawling_seeder: Running
) -> None:
    record = torrent(crawling_seeder, "single-hybrid")
    file = record["files"][0]
    async with await open_torrent(session, parse_source(record["magnet"])) as handle:
        size, body = await handle.stream(file["path"], GiB)
        verified_at_open = handle.pieces_verified()
        try:
            first = await anext(body)
        finally:
            await body.aclose()  # type: ignore[attr-defined]
        verified_after = handle.pieces_verified()
    assert size == SIZE
    assert verified_at_open == 0, "the stream waited for the first piece before opening"
    assert first == pattern(int(file["pattern_offset"]), PIECE)
    assert verified_after >= 1


async def test_a_peer_without_the_piece_is_not_a_source(
    tmp_path: Path, session: TorrentSession, crawling_seeder: Running
) -> None:
    """A torrent whose only peer has its metadata but none of its pieces still fails
    before any head is signed."""
    record = torrent(crawling_seeder, "single-hybrid")
    info = lt.torrent_info(record["torrent_file"])
    empty = lt.session(session_settings())  # in this process: it holds no byte of the file
    params = lt.add_torrent_params()
    params.ti, params.save_path = info, str(tmp_path / "empty")
    params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    empty.add_torrent(params)
    magnet = f"{lt.make_magnet_uri(info)}&x.pe=127.0.0.1:{empty.listen_port()}"
    async with await open_torrent(session, parse_source(magnet), metadata_timeout=2) as handle:
        assert handle.files() == [{"path": record["files"][0]["path"], "size": SIZE}]
        with pytest.raises(TorrentTimeout, match=r"no data for torrent .* within 2 s \(1 peers"):
            await handle.stream(record["files"][0]["path"], GiB)
        assert handle.pieces_verified() == 0
    del empty
