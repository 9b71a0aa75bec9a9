"""The reference, a plain libtorrent client downloading one magnet (sequential) with the edge's
settings pack, in its own process; it prints its ``time.monotonic()`` stamps as one JSON line::

    python plain_client.py MAGNET SAVE_DIR SETTINGS_JSON [--warm-up]
"""

from __future__ import annotations

import time

STARTED = time.monotonic()

import json  # noqa: E402 (after the first stamp, like the imports it times)
import sys  # noqa: E402
from typing import Any  # noqa: E402

import libtorrent as lt  # noqa: E402

WAIT_MS = 100
TIMEOUT = 300.0


def first_piece_of_largest_file(handle: Any) -> tuple[int, str, int]:
    """(first piece, path, size) of the torrent's largest file: the one the edge streams
    in the single-file case (pad files of a hybrid torrent are never the largest)."""
    info = handle.torrent_file()
    files = info.layout()
    index = max(range(files.num_files()), key=files.file_size)
    return (
        files.file_offset(index) // info.piece_length(),
        files.file_path(index),
        files.file_size(index),
    )


def download(ses: Any, params: Any, timeout: float, warm_up: bool) -> dict[str, Any]:
    stamps: dict[str, Any] = {"started": STARTED}
    piece_done: dict[int, float] = {}
    stamps["asked"] = time.monotonic()
    handle = ses.add_torrent(params)
    deadline = stamps["asked"] + timeout
    while "finished" not in stamps:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not finished within {timeout:g} s")
        ses.wait_for_alert(WAIT_MS)
        for alert in ses.pop_alerts():
            now = time.monotonic()
            if isinstance(alert, lt.piece_finished_alert):
                piece_done.setdefault(alert.piece_index, now)
                if warm_up:
                    return {"warm_up": True, "pieces_done": len(piece_done)}
            elif isinstance(alert, lt.metadata_received_alert):
                stamps.setdefault("metadata", now)
            elif isinstance(alert, lt.torrent_finished_alert):
                stamps["finished"] = now
            elif isinstance(alert, lt.torrent_error_alert | lt.file_error_alert):
                raise RuntimeError(alert.message())
    first, path, size = first_piece_of_largest_file(handle)
    info = handle.torrent_file()
    if first not in piece_done or len(piece_done) != info.num_pieces():
        raise RuntimeError(f"finished with {len(piece_done)} of {info.num_pieces()} pieces")
    stamps.setdefault("metadata", stamps["asked"])  # already there: no alert comes
    stamps.update(
        first_piece=piece_done[first],
        first_piece_index=first,
        pieces=info.num_pieces(),
        piece_length=info.piece_length(),
        path=path,
        size=size,
        out_of_order=sum(1 for p, t in piece_done.items() if t < piece_done[first] and p != first),
    )
    return stamps


def main(magnet: str, save: str, settings: str, *flags: str) -> None:
    """A torrent error or a timeout raises: a non-zero exit, the traceback on stderr."""
    imported = time.monotonic()
    ses = lt.session(json.loads(settings))
    params = lt.parse_magnet_uri(magnet)
    params.save_path = save
    params.flags |= lt.torrent_flags.sequential_download
    params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    stamps = download(ses, params, TIMEOUT, "--warm-up" in flags)
    print(json.dumps({**stamps, "imported": imported}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
