"""A test BitTorrent seeder: deterministic content, real libtorrent, loopback only.

Run as its own process::

    python tests/torrent_seeder.py --dir D --make single --make multi:v1:3000000 \
        [--piece-size 65536] [--rate-limit BYTES_PER_S]

Each ``--make KIND[:VERSION[:SIZE]]`` creates one torrent: KIND ``single`` (one
file) or ``multi`` (a folder with nested files, a tiny one and an empty one),
VERSION ``hybrid`` (default, v1+v2 with pad files), ``v1`` or ``v2``, SIZE the
main file's bytes (default 1 MiB). File *k* of torrent *t* holds
``pattern(offset, size)`` from tests/origin_server.py with ``offset`` reported
as ``pattern_offset``, so tests recompute the bytes instead of sharing files.

It seeds on 127.0.0.1 with DHT, LSD, UPnP and NAT-PMP off, and prints one JSON
line ``{"listening": "127.0.0.1:PORT", "torrents": [{name, infohash_v1,
infohash_v2, magnet, torrent_file, files: [{path, size, pattern_offset}]}]}``.
The rate limit is per torrent: session limits do not apply to loopback peers.
SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

import libtorrent as lt

DEFAULT_SIZE = 1 << 20
WRITE_BLOCK = 1 << 20


def session_settings() -> lt.settings_pack:
    return {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        "allow_multiple_connections_per_ip": True,
        "tick_interval": 50,
        "disk_write_mode": 0,
        "alert_mask": 0,
    }


def layout(kind: str, size: int) -> list[tuple[str, int]]:
    """(path inside the torrent, size) of each file; a single file's path is its name."""
    if kind == "single":
        return [("", size)]
    return [
        ("readme.txt", 1000),
        ("data/a.bin", size),
        ("data/sub/b.bin", size // 3 + 4097),
        ("empty.txt", 0),
    ]


def write_content(path: Path, offset: int, size: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.origin_server import pattern

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for start in range(0, size, WRITE_BLOCK):
            out.write(pattern(offset + start, min(WRITE_BLOCK, size - start)))


def make_torrent(base: Path, number: int, spec: str, piece_size: int) -> dict[str, Any]:
    kind, version, size_text = ([*spec.split(":"), "", ""])[:3]
    if kind not in ("single", "multi") or version not in ("", "hybrid", "v1", "v2"):
        raise SystemExit(f"--make wants single|multi[:hybrid|v1|v2[:SIZE]], got {spec!r}")
    version = version or "hybrid"
    size = int(size_text) if size_text else DEFAULT_SIZE
    name = f"{kind}-{version}-{size}-{number}"
    files = []
    for index, (inner, file_size) in enumerate(layout(kind, size)):
        offset = (number * 16 + index) << 40
        write_content(base / name / inner if inner else base / name, offset, file_size)
        files.append({"path": inner or name, "size": file_size, "pattern_offset": offset})
    flags = {"hybrid": 0, "v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only}
    creator = lt.create_torrent(lt.list_files(str(base / name)), piece_size, flags[version])
    lt.set_piece_hashes(creator, str(base))
    metainfo = lt.bencode(creator.generate())
    torrent_file = base / f"{name}.torrent"
    torrent_file.write_bytes(metainfo)
    info = lt.torrent_info(metainfo)
    hashes = info.info_hashes()
    return {
        "name": name,
        "infohash_v1": str(hashes.v1) if hashes.has_v1() else None,
        "infohash_v2": str(hashes.v2) if hashes.has_v2() else None,
        "magnet": lt.make_magnet_uri(info),
        "torrent_file": str(torrent_file),
        "files": files,
        "_info": info,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--make", action="append", default=[], metavar="KIND[:VERSION[:SIZE]]")
    parser.add_argument("--piece-size", type=int, default=65536)
    parser.add_argument("--rate-limit", type=int, default=0, help="upload bytes/s per torrent")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    made = [make_torrent(args.dir, n, spec, args.piece_size) for n, spec in enumerate(args.make)]
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    ses = lt.session(session_settings())
    for torrent in made:
        params = lt.add_torrent_params()
        params.ti = torrent.pop("_info")
        params.save_path = str(args.dir)
        params.flags |= lt.torrent_flags.seed_mode  # we wrote the data: skip the hash check
        params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)  # seed now
        handle = ses.add_torrent(params)
        if args.rate_limit:
            handle.set_upload_limit(args.rate_limit)
    listening = f"127.0.0.1:{ses.listen_port()}"
    for torrent in made:
        torrent["magnet"] += f"&x.pe={listening}"
    print(json.dumps({"listening": listening, "torrents": made}), flush=True)
    while not stop:
        ses.wait_for_alert(200)
        ses.pop_alerts()
    return 0


if __name__ == "__main__":
    sys.exit(main())
