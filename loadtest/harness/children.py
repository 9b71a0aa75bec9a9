"""The child processes of a benchmark, on the project's one process runner
(``launcher/processes.py``): servers started and stopped by PID, commands timed to exit."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher import processes
from loadtest import REPO

READY_TIMEOUT = processes.READY_TIMEOUT
ATLAS = str(Path(sys.executable).with_name("atlas"))


class BenchError(Exception):
    """A measurement could not be made (a server misbehaved, a check failed)."""


def module_argv(module: str, *args: str) -> list[str]:
    """``python -m MODULE ARGS`` (``child_env`` puts the repository on its path)."""
    return [sys.executable, "-m", module, *args]


def child_env() -> dict[str, str]:
    """The repository first on ``PYTHONPATH`` (on top of this process's environment)."""
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}


@dataclass
class Proc:
    """A server this benchmark started (its output in ``workdir/NAME.log``)."""

    name: str
    process: processes.Process
    url: str = ""
    ready: dict[str, Any] = field(default_factory=dict)  # its ready line ({} for nginx)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 15) -> str:
        return self.process.log_tail(lines)


class Processes:
    """Every server of the run; ``close`` stops them all (in reverse order), by PID."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.running, self.bad_exits = workdir, list[Proc](), list[str]()

    def start(self, name: str, argv: Sequence[str], *, ready_line: bool = True) -> Proc:
        """``argv`` in ``workdir``; with ``ready_line``, waits for its ``{"listening": URL}``."""
        log = self.workdir / f"{name}.log"
        process = processes.spawn(argv, name=name, env=child_env(), cwd=self.workdir, log=log)
        self.running.append(proc := Proc(name, process))
        if ready_line:
            try:
                proc.ready = process.wait_ready(READY_TIMEOUT)
            except processes.NotReady as exc:
                self.stop(proc)
                raise BenchError(f"{name} {exc}:\n{proc.log_tail()}") from None
            proc.url = process.url
        return proc

    def stop(self, proc: Proc) -> int | None:
        code = proc.process.stop(20.0)
        if proc in self.running:
            self.running.remove(proc)
            if code not in (0, -signal.SIGTERM):
                self.bad_exits.append(f"{proc.name} exited {code}: {proc.log_tail(5)}")
        return code

    def close(self) -> None:
        for proc in reversed(list(self.running)):
            self.stop(proc)

    def ledger(self) -> Proc:
        argv = [ATLAS, "ledger", "serve", "--host", "127.0.0.1", "--port", "0"]
        return self.start("ledger", [*argv, "--data-dir", str(self.workdir / "ledger"), "--faucet"])

    def edge(self, name: str, ledger: str, *extra: str) -> Proc:
        argv = [ATLAS, "edge", "serve", "--host", "127.0.0.1", "--port", "0"]
        argv += ["--data-dir", str(self.workdir / name), "--ledger", ledger]
        return self.start(name, [*argv, "--allow-private-origins", *extra])


class Spawned:
    """One command run to completion as a child, timed to its exit, its output in
    ``workdir/NAME.out|.err`` (removed on leaving the ``with``); killed if it overruns."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], workdir: Path, name: str) -> None:
        self.name, self.argv, self.stdout = name, list(argv), ""
        self._out, self._err = workdir / f"{name}.out", workdir / f"{name}.err"
        with self._out.open("wb") as stdout, self._err.open("wb") as stderr:
            self.spawned = time.monotonic()  # just before the spawn
            self.popen = subprocess.Popen(
                self.argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=env,
                cwd=workdir, preexec_fn=processes.dies_with(os.getpid()),  # noqa: PLW1509
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait(self, timeout: float) -> float:
        """``time.monotonic()`` at its exit, seen through a pidfd (``Popen.wait`` polls with
        sleeps of up to 50 ms); reads its stdout. BenchError if it ran over ``timeout`` (then
        it is killed) or exited non-zero."""
        pidfd = os.pidfd_open(self.popen.pid)
        try:
            ended = select.select([pidfd], [], [], timeout)[0]
            exited = time.monotonic()
        finally:
            os.close(pidfd)
        if not ended:  # __exit__ kills it
            raise BenchError(f"{self.name}: did not finish in {timeout:.0f} s")
        code = self.popen.wait()
        self.stdout = self._out.read_text(encoding="utf-8", errors="replace")
        if code != 0:
            problem = self._err.read_text(encoding="utf-8", errors="replace")[-1500:]
            raise BenchError(
                f"{self.name}: {self.argv[0]} exited {code}: {self.stdout[-500:]} {problem}"
            )
        return exited

    def __enter__(self) -> Spawned:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.popen.poll() is None:  # overran, or left early: our own child, by its PID
            self.popen.kill()
            self.popen.wait()
        self._out.unlink(missing_ok=True)
        self._err.unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(proc: Proc, port: int, what: str) -> None:
    """Until ``port`` on 127.0.0.1 accepts a connection; BenchError if ``proc`` exits first
    or READY_TIMEOUT passes (the process is left running: the caller stops it)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and proc.process.returncode is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise BenchError(f"{what} did not start:\n{proc.log_tail()}")


@contextlib.contextmanager
def workspace(prefix: str) -> Iterator[Path]:
    """A temporary directory that nginx workers (an unprivileged user) can read; removed."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
