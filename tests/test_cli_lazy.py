"""``atlas`` imports a subcommand's module only when it runs or a help page lists it.

Every start of ``atlas fetch`` paid for every other command's imports (0.33 s of CPU
before any work, a third of a 100 MiB fetch's CPU); these tests keep what a command
loads to what it needs, and check that the help pages still list every command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from requester.cli.root import COMMANDS

SHOW_MODULES = """
import sys
from requester.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(sorted(sys.modules)), file=sys.stderr)
"""
ELSEWHERE = {"requester.cli.wallet", "requester.cli.config_show", "requester.cli.status",
             "requester.cli.decode"}  # fmt: skip
"""The modules of the other SDK commands."""


def loaded(*args: str, home: Path | None = None) -> set[str]:
    """The modules ``atlas ARGS`` had imported when it finished."""
    env = {**os.environ, "ATLAS_HOME": str(home)} if home is not None else None
    result = subprocess.run([sys.executable, "-c", SHOW_MODULES, *args], capture_output=True,
                            text=True, timeout=60, check=False, env=env)  # fmt: skip
    return set(result.stderr.splitlines()[-1].split())


def test_fetch_help_loads_neither_other_commands_nor_the_download() -> None:
    modules = loaded("fetch", "--help")
    assert "requester.cli.fetch" in modules
    assert not modules & (ELSEWHERE | {"requester.cli.fetch_run", "requester.client"})
    assert not modules & {"rich", "importlib.metadata"}  # the bar; plugins and --version
    assert not modules & {"aiohttp", "requester.ledger_api", "requester.channel_manager"}


def test_a_fetch_loads_the_download_but_no_other_command_nor_the_dht(tmp_path: Path) -> None:
    """A fetch that runs (here: to an edge that refuses the connection)."""
    modules = loaded("fetch", "http://127.0.0.1:9/x", "--edge", "http://127.0.0.1:9",
                     home=tmp_path)  # fmt: skip
    assert {"requester.cli.fetch_run", "requester.client"} <= modules
    assert not modules & (ELSEWHERE | {"rich", "importlib.metadata"})
    assert "libtorrent" not in modules  # the DHT (~11 MiB) only with --bootstrap


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_loads_on_its_own(name: str) -> None:
    assert f"requester.cli.{COMMANDS[name][0].rsplit('.', 1)[1]}" in loaded(name, "--help")


def test_the_help_page_still_lists_every_command() -> None:
    result = subprocess.run([sys.executable, "-m", "requester.cli", "--help"],
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    listed = {line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines()
              if line.strip()}  # fmt: skip
    assert set(COMMANDS) | {"edge", "ledger", "proxy", "up"} <= listed
