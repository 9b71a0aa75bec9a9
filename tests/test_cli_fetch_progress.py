"""What ``atlas fetch`` shows (issue 19): a progress bar on a terminal, a spinner for content
of unknown size, one closing line on stderr, and nothing drawn on a pipe or with ``--json``.

Every fetch is a real paid download through the edges of a real ``atlas up``."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_terminal import atlas, atlas_env, on_terminal, paying_network
from tests.launcher.atlas_up import Up
from tests.origin_server import pattern
from tests.processes import Running

SIZE = 3_000_000
FINAL = re.compile(
    r"atlas: saved (?P<path>\S+): (?P<size>[\d.]+ \w+) in (?P<secs>[\d.]+) s "
    r"\((?P<rate>[\d.]+ \w+)/s\), paid (?P<paid>[\d.]+) BTT, (?P<providers>\d+) providers?"
)
BAR = "━"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    yield from paying_network(tmp_path_factory.mktemp("net") / "atlas")


def data_dir(up: Up) -> Path:
    return Path(str(up.info["data_dir"]))


def test_a_terminal_shows_the_bar_and_the_closing_line(
    network: Up, origin: Running, tmp_path: Path
) -> None:
    out = tmp_path / "film.bin"
    url = f"{origin.url}/bytes/{SIZE}?t=bar"
    shown = on_terminal(atlas("fetch", url, "-o", str(out)), atlas_env(data_dir(network)))
    assert shown.returncode == 0, shown.screen
    assert out.read_bytes() == pattern(0, SIZE)
    screen = shown.screen
    assert BAR in screen and "100%" in screen, screen
    assert "2.9 MiB/2.9 MiB" in screen, screen  # bytes of the total
    assert re.search(r"[\d.]+ [KMG]iB/s", screen), screen  # rate
    assert "ETA 0:00:00" in screen, screen
    assert re.search(r"0\.\d+ BTT spent\s+[12] providers?", screen), screen
    final = FINAL.search(screen)
    assert final is not None, screen
    assert final["path"] == str(out) and final["size"] == "2.9 MiB"
    assert float(final["paid"]) > 0 and int(final["providers"]) >= 1


def test_an_80_column_terminal_gets_the_bar_on_one_row(
    network: Up, origin: Running, tmp_path: Path
) -> None:
    """The usual terminal width: each redraw is one row whose columns are whole (rich wrapped
    them before: '256.0' on one row, 'KiB/5.7 MiB' on the next, three rows a redraw)."""
    out = tmp_path / "narrow.bin"
    url = f"{origin.url}/slow/{SIZE}?delay=0.002&t=narrow"
    environ = {**atlas_env(data_dir(network)), "COLUMNS": "80"}
    shown = on_terminal(atlas("fetch", url, "-o", str(out)), environ, columns=80)
    assert shown.returncode == 0, shown.screen
    frames = [row for row in re.split(r"[\r\n]", shown.screen) if "%" in row]
    assert frames, shown.screen
    whole = re.compile(r"\d+% \S+ \S+/\S+ \S+ +(\?|\S+ \S+)/s ETA \S+ +[\d.]+ BTT spent")
    assert all(whole.search(row) and len(row) <= 80 for row in frames), shown.screen
    assert "2.9 MiB/2.9 MiB" in shown.screen and "100%" in shown.screen, shown.screen
    assert FINAL.search(shown.screen) is not None, shown.screen


def test_unknown_size_shows_a_spinner_with_bytes_and_rate(
    network: Up, origin: Running, tmp_path: Path
) -> None:
    out = tmp_path / "page.html"
    url = f"{origin.url}/gzip/600000?t=spin"  # encoded: the edge cannot know the size
    shown = on_terminal(atlas("fetch", url, "-o", str(out)), atlas_env(data_dir(network)))
    assert shown.returncode == 0, shown.screen
    screen = shown.screen
    assert BAR not in screen and "%" not in screen and "ETA" not in screen, screen
    assert re.search(r"[\d.]+ [KM]iB\s+[\d.]+ [KM]iB/s", screen), screen  # bytes, rate
    assert "BTT spent" in screen
    assert FINAL.search(screen) is not None, screen


def test_a_pipe_and_json_get_nothing_decorative(
    network: Up, origin: Running, tmp_path: Path
) -> None:
    url = f"{origin.url}/bytes/{SIZE}?t=pipe"
    home = atlas_env(data_dir(network))
    piped = subprocess.run(atlas("fetch", url, "-o", str(tmp_path / "a")), env=home,
                           capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == ""
    lines = piped.stderr.splitlines()
    assert len(lines) == 1 and FINAL.fullmatch(lines[0]), piped.stderr
    assert "\r" not in piped.stderr and "\x1b" not in piped.stderr
    redirected = on_terminal(atlas("fetch", url, "-o", str(tmp_path / "c")), home,
                             stdout_pipe=True)  # fmt: skip
    assert redirected.returncode == 0, redirected.screen
    drawn = redirected.screen.strip().splitlines()  # stdout redirected: the closing line only
    assert len(drawn) == 1 and FINAL.fullmatch(drawn[0].strip()), redirected.screen
    as_json = on_terminal(atlas("fetch", url, "-o", str(tmp_path / "b"), "--json"), home,
                          stdout_pipe=True)  # fmt: skip
    assert as_json.returncode == 0, as_json.screen
    assert as_json.screen.strip() == "", as_json.screen  # stderr on the terminal: nothing
    assert json.loads(as_json.stdout)["bytes"] == SIZE
