"""launcher/processes.py with small real programs: the ready line, a program that ends or
stays silent instead, a stop that has to escalate, the log, and a starter that dies."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest

from launcher.processes import NotReady, describe_exit, spawn, start

READY = (
    "import json, sys; print(json.dumps({'listening': 'http://127.0.0.1:9', 'n': 1}), flush=True)"
)
IGNORES_TERM = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_the_ready_line_is_read_past_other_output_and_the_rest_is_logged(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    code = (
        "import sys, time\nprint('starting', flush=True)\nprint('[1]', flush=True)\n"
        "print('to stderr', file=sys.stderr, flush=True)\n"
        f"{READY}\nprint('after', flush=True)\ntime.sleep(60)"
    )
    server = start(python(code), log=log, name="server")
    try:
        assert server.url == "http://127.0.0.1:9"
        assert server.ready["n"] == 1
        deadline = time.monotonic() + 10
        while "after" not in server.log_tail() and time.monotonic() < deadline:
            time.sleep(0.02)
        logged = server.log_tail().splitlines()  # stderr is written by the program itself
        assert sorted(logged) == ["[1]", "after", "starting", "to stderr"]
    finally:
        assert server.stop() == -signal.SIGTERM


def test_a_program_that_ends_first_is_not_ready_and_says_how_it_ended() -> None:
    with pytest.raises(NotReady, match=r"^exited with status 3 before it was ready$"):
        start(python("import sys; print('no'); sys.exit(3)"))


def test_a_silent_program_is_killed_at_the_timeout() -> None:
    program = spawn(python("import time; time.sleep(60)"))
    with pytest.raises(NotReady, match=r"not ready within 0\.3 s"):
        program.wait_ready(0.3)
    assert program.returncode == -signal.SIGKILL


def test_a_program_that_ignores_sigterm_is_killed_after_the_stop_timeout() -> None:
    program = start(python(IGNORES_TERM + READY + "\nimport time; time.sleep(60)"))
    assert program.stop(timeout=0.5) == -signal.SIGKILL
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"


def test_a_stop_line_on_the_control_pipe(tmp_path: Path) -> None:
    said = tmp_path / "said"
    code = IGNORES_TERM + READY + f"\nopen({str(said)!r}, 'w').write(sys.stdin.readline())"
    program = start(python(code), control_pipe=True)
    assert program.stop(stop_line="stop\n") == 0
    assert said.read_text() == "stop\n"


def test_any_json_object_is_the_ready_line_without_a_ready_key() -> None:
    program = start(python("print('[2]'); print('{\"proxy\": 1}', flush=True)"), ready_key=None)
    assert program.ready == {"proxy": 1}
    assert program.wait(10) == 0


def test_a_program_gets_sigterm_when_its_starter_dies(tmp_path: Path) -> None:
    """The starter (a program that starts a server, prints its PID, then is killed -9)
    leaves no server behind."""
    starter = (
        "import json, sys\nfrom launcher.processes import start\n"
        f"server = start([sys.executable, '-c', {READY + '; import time; time.sleep(60)'!r}])\n"
        "print(json.dumps({'listening': 'x', 'server': server.pid}), flush=True)\n"
        "import time; time.sleep(60)"
    )
    parent = start(python(starter), cwd=Path(__file__).parents[2])
    server = int(str(parent.ready["server"]))
    parent.kill9()
    deadline = time.monotonic() + 10
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(server), "the server outlived its starter"


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie, waiting for init to reap it, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_the_async_waits_read_the_ready_line_and_stop_in_order() -> None:
    program = spawn(python(READY + "\nimport time; time.sleep(60)"), name="a")
    ready = await program.wait_ready_async(10)
    assert json.loads(json.dumps(ready))["listening"] == "http://127.0.0.1:9"
    assert await program.stop_async(10) == -signal.SIGTERM


async def test_an_async_stop_escalates_and_says_so() -> None:
    program = spawn(python(IGNORES_TERM + READY + "\nimport time; time.sleep(60)"))
    await program.wait_ready_async(10)
    lingered: list[int] = []
    code = await program.stop_async(0.3, lingers=lambda: lingered.append(program.pid))
    assert code == -signal.SIGKILL
    assert lingered == [program.pid]


async def test_an_async_wait_for_a_silent_program_kills_it() -> None:
    program = spawn(python("import time; time.sleep(60)"))
    with pytest.raises(NotReady, match="not ready within"):
        await program.wait_ready_async(0.3)
    assert program.returncode == -signal.SIGKILL
