"""``atlas fetch`` of a torrent (issue 19): one file needs no ``--file``; a choice of files is
asked for with each file's size. A real edge fetches from a real libtorrent seeder."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from requester.cli.fetch_progress import size_text
from tests.processes import Running
from tests.torrent.conftest import expected_sha256, torrent


def fetch(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "requester.cli", "fetch", *args],
        env={**os.environ, "ATLAS_HOME": str(home)}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def test_a_single_file_torrent_needs_no_file(
    edge: Running, seeder: Running, tmp_path: Path
) -> None:
    record = torrent(seeder, "single-v1")
    (file,) = record["files"]
    out = tmp_path / "film.bin"
    done = fetch(tmp_path / "home", record["magnet"], "--edge", edge.url, "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["bytes"] == file["size"]
    assert hashlib.sha256(out.read_bytes()).hexdigest() == expected_sha256(file)
    assert "--file" not in done.stderr


def test_several_files_are_listed_with_sizes(
    edge: Running, seeder: Running, tmp_path: Path
) -> None:
    record = torrent(seeder, "multi-hybrid")
    asked = fetch(tmp_path / "home", record["magnet"], "--edge", edge.url)
    assert asked.returncode == 1
    assert f"the torrent holds {len(record['files'])} files: name one with --file PATH" in (
        asked.stderr
    )
    for file in record["files"]:
        assert f"  {file['path']}  ({size_text(file['size'])})" in asked.stderr, asked.stderr
