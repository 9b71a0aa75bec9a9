"""``atlas config show`` and the generated options, run as real subprocesses.

Each program's settings are declared once (cdn_edge/config.py, cdn_edge/ledger/settings.py,
proxy/config.py, requester/settings.py); ``--help`` and ``atlas config show`` come from
those declarations, so every flag has its ``ATLAS_...`` variable and a value's source is
the flag, the variable, config.json or the default.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cdn_edge.config import EdgeConfig
from cdn_edge.ledger.settings import LedgerSettings
from launcher.up_settings import UpSettings
from proxy.config import ProxyConfig
from requester.protocol import BTT_LOCAL
from requester.settings_spec import specs
from tests.processes import start, start_ledger

ATLAS = str(Path(sys.executable).with_name("atlas"))
OLD_EDGE_FLAGS = [
    "--host", "--port", "--data-dir", "--ledger", "--tracker", "--public-url", "--price",
    "--free-mib", "--store-cap-gib", "--allow-private-origins", "--tunnel-port", "--no-tunnel",
    "--max-tunnels-per-client", "--max-tunnels", "--tunnel-pay-timeout", "--tunnel-idle-timeout",
    "--torrent-listen", "--no-torrents", "--torrent-discovery", "--torrent-seed",
    "--torrent-cap-gib", "--replica-unknown-channels", "--replica-unknown-deposit",
    "--replica-unknown-channels-per-hour", "--header-timeout", "--max-connections-per-address",
]  # fmt: skip
"""``atlas edge serve``'s flags before the settings were declared (ab262dc)."""


def atlas(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ATLAS_")}
    return subprocess.run(
        [ATLAS, *args], env={**clean, **(env or {})},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def shown(*args: str, env: dict[str, str]) -> dict[str, Any]:
    done = atlas("config", "show", *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    settings: dict[str, Any] = json.loads(done.stdout)["settings"]
    return settings


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.json").write_text(json.dumps({
        "edges": ["http://127.0.0.1:9001", "http://127.0.0.1:9002"],
        "ledger": "http://127.0.0.1:9000", "deposit": "3",
    }))  # fmt: skip
    return home


def test_requester_settings_say_where_each_came_from(home: Path) -> None:
    env = {"ATLAS_HOME": str(home), "ATLAS_MAX_SPEND": "2", "ATLAS_CHANNEL_HOURS": "0.5"}
    settings = shown("--max-price", "0.01", env=env)
    config = str(home / "config.json")
    assert settings["edges"] == {
        "value": "http://127.0.0.1:9001 http://127.0.0.1:9002", "source": "config file",
        "from": config, "flag": "--edge", "env": "ATLAS_EDGE",
    }  # fmt: skip
    assert (settings["deposit"]["value"], settings["deposit"]["source"]) == ("3 BTT", "config file")
    assert settings["max_spend"]["value"] == "2 BTT"
    assert (settings["max_spend"]["source"], settings["max_spend"]["from"]) == (
        "environment", "ATLAS_MAX_SPEND",
    )  # fmt: skip
    assert settings["channel_hours"]["value"] == "0.5 h"
    assert settings["max_price"] == {
        "value": "0.01 BTT", "source": "flag", "from": "--max-price", "flag": "--max-price",
        "env": "ATLAS_MAX_PRICE",
    }  # fmt: skip
    assert settings["unknown_deposit"]["source"] == "default"

    overridden = shown("--edge", "http://127.0.0.1:9009", env={**env, "ATLAS_LEDGER": "http://l"})
    assert overridden["edges"]["value"] == "http://127.0.0.1:9009"
    assert overridden["edges"]["source"] == "flag"
    assert overridden["ledger"]["source"] == "environment"


def test_edge_settings_are_shown_in_their_units_with_their_source(tmp_path: Path) -> None:
    env = {"ATLAS_FREE_MIB": "2", "ATLAS_TRACKER": "http://t1 http://t2"}
    done = atlas("config", "show", "edge", "--price", "0.002", "--data-dir", str(tmp_path),
                 env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line.split(maxsplit=1)[1] for line in done.stdout.splitlines()}
    assert lines["price"].split() == ["0.002", "BTT", "flag", "--price"]
    assert lines["free_mib"].split() == ["2", "MiB", "environment", "ATLAS_FREE_MIB"]
    assert lines["trackers"].split()[:2] == ["http://t1", "http://t2"]
    assert lines["store_cap_gib"].split() == ["10", "GiB", "default"]
    assert lines["tunnel_pay_timeout"].split() == ["30", "s", "default"]
    assert lines["ledger"].split() == ["-", "not", "set"]


def test_ledger_proxy_and_up_settings(home: Path) -> None:
    ledger = shown("ledger", "--faucet-max", "5", env={"ATLAS_FAUCET": "1"})
    assert (ledger["faucet"]["value"], ledger["faucet"]["from"]) == ("true", "ATLAS_FAUCET")
    assert ledger["faucet_max"]["value"] == "5 BTT" and ledger["faucet_max"]["source"] == "flag"
    assert ledger["faucet_per_minute"]["value"] == "100000 BTT"

    proxy = shown("proxy", env={"ATLAS_HOME": str(home), "ATLAS_PROXY_PORT": "0",
                                "ATLAS_MAX_PER_DAY": "none"})  # fmt: skip
    assert proxy["edges"]["source"] == "config file"
    assert (proxy["port"]["value"], proxy["port"]["from"]) == ("0", "ATLAS_PROXY_PORT")
    assert proxy["max_per_day"]["value"] == "none" and proxy["max_per_request"]["value"] == "5 BTT"

    up = shown("up", "--intercept", env={"ATLAS_UP_EDGES": "2"})
    assert (up["edges"]["value"], up["edges"]["from"]) == ("2", "ATLAS_UP_EDGES")
    assert up["intercept"]["source"] == "flag" and up["proxy_port"]["value"] == "8080"


def test_a_running_edge_takes_its_settings_from_the_environment(tmp_path: Path) -> None:
    """The renamed fields reach the app: /v1/info says what ATLAS_PRICE, ATLAS_FREE_MIB
    (new names, same variables) and ATLAS_NO_TUNNEL, ATLAS_PORT... asked for."""
    ledger = start_ledger(tmp_path / "ledger")
    try:
        env = {"ATLAS_PRICE": "0.002", "ATLAS_FREE_MIB": "1.5", "ATLAS_NO_TUNNEL": "1",
               "ATLAS_DATA_DIR": str(tmp_path / "edge"), "ATLAS_LEDGER": ledger.url,
               "ATLAS_NO_TORRENTS": "1"}  # fmt: skip
        edge = start(["edge", "serve", "--price", "0.003"], env)
        try:
            with urllib.request.urlopen(f"{edge.url}/v1/info", timeout=10) as resp:
                info = json.load(resp)
        finally:
            edge.stop()
    finally:
        ledger.stop()
    assert info["price_per_mib"] == str(3 * BTT_LOCAL.one // 1000)  # the flag beats ATLAS_PRICE
    assert info["free_bytes"] == 3 * (1 << 20) // 2 and info["ledger"] == ledger.url
    assert "tunnel" in info and info["tunnel"] is None, info  # ATLAS_NO_TUNNEL


def test_a_bad_value_is_refused_with_its_name() -> None:
    done = atlas("config", "show", "edge", env={"ATLAS_PRICE": "lots"})
    assert done.returncode == 2
    assert "ATLAS_PRICE" in done.stderr and "not an amount" in done.stderr


@pytest.mark.parametrize(("command", "declaration"), [
    (["edge", "serve"], EdgeConfig), (["ledger", "serve"], LedgerSettings),
    (["proxy"], ProxyConfig), (["up"], UpSettings),
])  # fmt: skip
def test_help_lists_every_flag_with_its_variable(command: list[str], declaration: type) -> None:
    done = atlas(*command, "--help")
    assert done.returncode == 0, done.stderr
    blocks = options_of(done.stdout)
    for spec in specs(declaration):
        if spec.flag is not None:
            assert f"env var: {spec.env}" in blocks[spec.flag], (spec.flag, done.stdout)
    if command == ["edge", "serve"]:
        for flag in OLD_EDGE_FLAGS:
            assert flag in blocks, flag


def options_of(help_text: str) -> dict[str, str]:
    """Each option's help, one line, by each of its flags (click wraps at 80 columns)."""
    blocks: list[str] = []
    for line in help_text.split("Options:", 1)[1].splitlines():
        if line.startswith("  -"):  # an option; its help wraps onto deeper lines
            blocks.append(line.strip())
        elif blocks:
            blocks[-1] += " " + line.strip()
    found = {}
    for block in blocks:
        for flag in block.split("  ", 1)[0].replace(",", " ").split():
            if flag.startswith("-"):
                found[flag] = block
    return found
