"""Child processes of a benchmark: started with their output in files, stopped by PID."""

from __future__ import annotations

import contextlib
import ctypes
import json
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
from dataclasses import dataclass
from pathlib import Path

from loadtest import REPO

READY_TIMEOUT = 30.0
ATLAS = str(Path(sys.executable).with_name("atlas"))


def module_argv(module: str, *args: str) -> list[str]:
    """``python -m MODULE ARGS``: a loadtest module run as a child (``child_env`` puts the
    repository on its path, whatever its working directory)."""
    return [sys.executable, "-m", module, *args]


def child_env() -> dict[str, str]:
    """This process's environment with the repository first on ``PYTHONPATH``."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}


class BenchError(Exception):
    """A measurement could not be made (a server misbehaved, a check failed)."""


def die_with_parent() -> None:
    """In the child before exec: SIGTERM it if this benchmark dies (PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


@dataclass
class Proc:
    """A child process this benchmark started; stopped by its PID, never by name."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        return self.popen.returncode

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Processes:
    """Every server of the run; ``close`` stops them all (in reverse order), by PID."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: list[Proc] = []
        self.bad_exits: list[str] = []

    def start(self, name: str, argv: Sequence[str], *, ready_line: bool = True) -> Proc:
        out = self.workdir / f"{name}.out"
        log = self.workdir / f"{name}.log"
        with out.open("wb") as stdout, log.open("wb") as stderr:
            popen = subprocess.Popen(
                list(argv),
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=child_env(),
                cwd=self.workdir,
                preexec_fn=die_with_parent,  # noqa: PLW1509 (it only calls prctl)
            )
        proc = Proc(name, popen, log)
        self.running.append(proc)
        if ready_line:
            proc.url = self._wait_ready(proc, out)
        return proc

    def _wait_ready(self, proc: Proc, out: Path) -> str:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            for line in out.read_text(encoding="utf-8", errors="replace").splitlines():
                with contextlib.suppress(ValueError, AttributeError):
                    url = json.loads(line).get("listening")
                    if url:
                        return str(url)
            if proc.popen.poll() is not None:
                break
            time.sleep(0.05)
        self.stop(proc)
        raise BenchError(f"{proc.name} did not become ready:\n{proc.log_tail()}")

    def stop(self, proc: Proc) -> int | None:
        code = proc.stop()
        if proc in self.running:
            self.running.remove(proc)
            if code not in (0, -signal.SIGTERM):
                self.bad_exits.append(f"{proc.name} exited {code}: {proc.log_tail(5)}")
        return code

    def close(self) -> None:
        for proc in reversed(list(self.running)):
            self.stop(proc)

    def ledger(self) -> Proc:
        data = self.workdir / "ledger"
        return self.start(
            "ledger",
            [
                ATLAS,
                "ledger",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
                str(data),
                "--faucet",
            ],
        )

    def edge(self, name: str, ledger: str, *extra: str) -> Proc:
        data = self.workdir / name
        return self.start(
            name,
            [
                ATLAS,
                "edge",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
                str(data),
                "--ledger",
                ledger,
                "--allow-private-origins",
                *extra,
            ],
        )


def wait_exit(popen: subprocess.Popen[bytes], timeout: float) -> float | None:
    """``time.monotonic()`` when ``popen``'s process ended, seen through a pidfd; None if it
    is still running after ``timeout`` s. ``Popen.wait(timeout)`` polls with sleeps of up to
    50 ms, which would make every short run look 12 to 16 ms slower than it was."""
    pidfd = os.pidfd_open(popen.pid)
    try:
        ended, _, _ = select.select([pidfd], [], [], timeout)
        return time.monotonic() if ended else None
    finally:
        os.close(pidfd)


class Spawned:
    """One command run to completion as a child, its output in ``workdir/NAME.out|.err``
    (removed on leaving the ``with``); stopped by its PID if it overruns."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], workdir: Path, name: str) -> None:
        self.name, self.argv = name, list(argv)
        self._out, self._err = workdir / f"{name}.out", workdir / f"{name}.err"
        self.stdout = ""
        with self._out.open("wb") as stdout, self._err.open("wb") as stderr:
            self.spawned = time.monotonic()
            """``time.monotonic()`` just before the spawn."""
            self.popen = subprocess.Popen(
                self.argv,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=workdir,
                preexec_fn=die_with_parent,  # noqa: PLW1509 (it only calls prctl)
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait(self, timeout: float) -> float:
        """``time.monotonic()`` at its exit (seen through a pidfd); reads its stdout. Raises
        BenchError if it ran over ``timeout`` (then it is killed) or exited non-zero."""
        exited = wait_exit(self.popen, timeout)
        if exited is None:
            self.popen.kill()  # our own child, by its PID
            self.popen.wait()
            raise BenchError(f"{self.name}: did not finish in {timeout:.0f} s")
        code = self.popen.wait()
        self.stdout = self._out.read_text(encoding="utf-8", errors="replace")
        if code != 0:
            problem = self._err.read_text(encoding="utf-8", errors="replace")
            raise BenchError(
                f"{self.name}: {self.argv[0]} exited {code}: {self.stdout[-500:]} {problem[-1500:]}"
            )
        return exited

    def __enter__(self) -> Spawned:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.popen.poll() is None:  # left early by an exception: our own child, by PID
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
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            break
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
