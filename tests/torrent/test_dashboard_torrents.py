"""The operator's dashboard lists the torrents a seeding edge holds (issue 19): a real
edge fetches a single-file torrent from a real libtorrent seeder for ``atlas fetch``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import Running, start_edge, start_ledger
from tests.torrent.conftest import torrent


@pytest.fixture(scope="module")
def seeding_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    ledger = start_ledger(tmp_path_factory.mktemp("ledger"))
    running = start_edge(tmp_path_factory.mktemp("edge"), ledger.url, "--free-mib", "4096",
                         "--torrent-seed")  # fmt: skip
    yield running
    running.stop()
    ledger.stop()


def test_the_dashboard_lists_a_seeded_torrent(
    seeding_edge: Running, seeder: Running, tmp_path: Path
) -> None:
    record = torrent(seeder, "single-v1")
    done = subprocess.run(
        [sys.executable, "-m", "requester.cli", "fetch", record["magnet"], "--edge",
         seeding_edge.url, "-o", str(tmp_path / "out.bin")],
        env={**os.environ, "ATLAS_HOME": str(tmp_path / "home")}, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with urllib.request.urlopen(seeding_edge.url + "/", timeout=60) as answer:
        page = answer.read().decode()
    assert "<h2>Torrents</h2>" in page, page
    listed = page.split("<h2>Torrents</h2>", 1)[1]
    assert record["name"] in listed, listed
    have = re.search(r"<td>([\d.]+ \w+) of ([\d.]+ \w+)</td>", listed)
    assert have is not None and have[1] == have[2] != "0 B", listed  # all of the file, kept
