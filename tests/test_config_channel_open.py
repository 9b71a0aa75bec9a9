"""``atlas channel open`` takes its deposit and lifetime from the settings like every
payment does: config.json's ``deposit`` and ``channel_hours``, ``ATLAS_DEPOSIT`` and
``ATLAS_CHANNEL_HOURS``, then the flags (it used to ignore all but its flags' defaults).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from requester.protocol import PayerKey
from tests.processes import Running
from tests.sdk.conftest import Home, make_home

PAYEE = str(PayerKey(b"\x07" * 32).address)


def opened(home: Home, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """``atlas channel open PAYEE *args`` in ``home``, with ``env`` added: the channel."""
    done = subprocess.run(
        [sys.executable, "-m", "requester.cli", "channel", "open", PAYEE, *args],
        env={**home.env, **(env or {})}, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    channel: dict[str, object] = json.loads(done.stdout)
    return channel


def hours_left(channel: dict[str, object]) -> float:
    expires_at = channel["expires_at"]
    assert isinstance(expires_at, int)
    return (expires_at - time.time()) / 3600


def test_channel_open_takes_deposit_and_hours_from_config_json(
    tmp_path: Path, ledger: Running
) -> None:
    home = make_home(tmp_path / "home", [], ledger.url)
    config = home.path / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()),
                                  "deposit": "3", "channel_hours": 2}))  # fmt: skip

    from_file = opened(home)
    assert from_file["deposit"] == "3 BTT"
    assert 1.9 < hours_left(from_file) <= 2.0

    from_env = opened(home, env={"ATLAS_DEPOSIT": "4", "ATLAS_CHANNEL_HOURS": "3"})
    assert from_env["deposit"] == "4 BTT"
    assert 2.9 < hours_left(from_env) <= 3.0

    from_flags = opened(home, "--deposit", "5", "--hours", "4", env={"ATLAS_DEPOSIT": "4"})
    assert from_flags["deposit"] == "5 BTT"
    assert 3.9 < hours_left(from_flags) <= 4.0
