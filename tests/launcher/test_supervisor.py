"""launcher/supervisor.py with small real child programs: restarts with a pause, gives up
after repeated quick deaths and says so, stops children in reverse stage order."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from launcher import supervisor
from launcher.supervisor import ChildSpec, Supervisor

READY = "import json, sys; print(json.dumps({'listening': 'http://127.0.0.1:9'}), flush=True); "


async def wait_for_text(capsys: pytest.CaptureFixture[str], text: str, seen: list[str]) -> None:
    for _ in range(400):
        seen.append(capsys.readouterr().err)
        if text in "".join(seen):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} never said; said:\n" + "".join(seen))


async def test_a_child_that_keeps_dying_is_restarted_then_given_up_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(supervisor, "FIRST_PAUSE", 0.01)
    said: list[str] = []
    async with Supervisor(asyncio.Event()) as children:
        await children.start(ChildSpec("flaky", [sys.executable, "-c", READY + "sys.exit(3)"], 0))
        await wait_for_text(capsys, "not restarting it again", said)
    log = "".join(said)
    assert log.count("exited with status 3; restarting it in") == supervisor.GIVE_UP_AFTER - 1
    assert log.count("flaky is back") == supervisor.GIVE_UP_AFTER - 1
    assert f"{supervisor.GIVE_UP_AFTER} times in a row" in log


async def test_children_stop_in_reverse_stage_order_and_the_last_on_its_stop_line(
    tmp_path: Path,
) -> None:
    """Stage 1 gets SIGTERM and ends first; stage 0 ignores SIGTERM and ends on ``stop``."""
    record = tmp_path / "order"
    term = (
        "import signal, sys, time\n"
        f"signal.signal(signal.SIGTERM, lambda *_: (open({str(record)!r}, 'a').write('term '), "
        "sys.exit(0)))\n" + READY + "time.sleep(60)"
    )
    last = (
        "import signal, sys\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + READY +
        f"line = sys.stdin.readline(); open({str(record)!r}, 'a').write('last:' + line.strip())"
    )  # fmt: skip
    async with Supervisor(asyncio.Event()) as children:
        await children.start(ChildSpec("last", [sys.executable, "-c", last], 0, stops_last=True))
        await children.start(ChildSpec("term", [sys.executable, "-c", term], 1))
    assert record.read_text() == "term last:stop"
