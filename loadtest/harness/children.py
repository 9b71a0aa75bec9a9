"""The child processes of a benchmark, on the project's one process runner
(``launcher/processes.py``): servers started and stopped by PID, commands timed to exit."""

from __future__ import annotations

import contextlib
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher import processes
from loadtest import REPO
from loadtest.harness.procfs import Poller, RssSampler, child_cpu_seconds

READY_TIMEOUT = processes.READY_TIMEOUT
RUN_TIMEOUT = 300.0
WATCH_POLL = 0.002  # seconds between two looks at a watched file
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


class Processes:
    """Every server of the run; ``close`` stops them all (in reverse order), by PID."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.running, self.bad_exits = workdir, list[Proc](), list[str]()

    def start(
        self, name: str, argv: Sequence[str], *, port: int = 0,
        ready_key: str | None = "listening", timeout: float = READY_TIMEOUT,
    ) -> Proc:  # fmt: skip
        """``argv`` in ``workdir``, waited for: until its ready line (the first JSON object
        holding ``ready_key``; None: any) or, given the ``port`` it listens on (nginx,
        mitmdump), until that port accepts a connection."""
        log = self.workdir / f"{name}.log"
        process = processes.spawn(argv, name=name, env=child_env(), cwd=self.workdir, log=log,
                                  ready_key=ready_key)  # fmt: skip
        self.running.append(proc := Proc(name, process, f"http://127.0.0.1:{port}"))
        try:
            if port:
                wait_port(port, process)
            else:
                proc.ready = process.wait_ready(timeout)
                proc.url = str(proc.ready.get("listening", ""))
        except (processes.NotReady, BenchError) as exc:
            self.stop(proc)
            raise BenchError(f"{name} {exc} (see {log}):\n{process.log_tail()}") from None
        return proc

    def stop(self, proc: Proc, timeout: float = 20.0) -> int | None:
        code = proc.process.stop(timeout)
        if proc in self.running:
            self.running.remove(proc)
            if code not in (0, -signal.SIGTERM):
                self.bad_exits.append(f"{proc.name} exited {code}: {proc.process.log_tail(5)}")
        return code

    def close(self, timeout: float = 20.0) -> None:
        for proc in reversed(list(self.running)):
            self.stop(proc, timeout)

    def ledger(self) -> Proc:
        argv = [ATLAS, "ledger", "serve", "--host", "127.0.0.1", "--port", "0"]
        return self.start("ledger", [*argv, "--data-dir", str(self.workdir / "ledger"), "--faucet"])

    def origin(self) -> Proc:
        """The tests' aiohttp origin (tests/origin_server.py: /bytes/N, /site/...)."""
        return self.start("origin", [sys.executable, str(REPO / "tests" / "origin_server.py")])

    def edge(self, name: str, ledger: str, *extra: str) -> Proc:
        argv = [ATLAS, "edge", "serve", "--host", "127.0.0.1", "--port", "0"]
        argv += ["--data-dir", str(self.workdir / name), "--ledger", ledger]
        return self.start(name, [*argv, "--allow-private-origins", *extra])


def run_logged(argv: Sequence[str], name: str, log: Path, timeout: float, grace: float,
               env: dict[str, str] | None = None) -> tuple[int, bool]:  # fmt: skip
    """``argv`` from the repository root on the runner, its output in ``log``, waited for up
    to ``timeout`` s: (its exit status, whether it overran). Past ``timeout`` (or when this
    process is interrupted) it gets SIGTERM and ``grace`` s to stop its own children."""
    child = processes.spawn(argv, name=name, env={**child_env(), **(env or {})}, cwd=REPO,
                            log=log)  # fmt: skip
    try:
        return child.wait(timeout), False
    except subprocess.TimeoutExpired:
        return child.stop(grace), True
    except BaseException:  # Ctrl-C: it runs in its own session, so stop it here
        child.stop(grace)
        raise


@dataclass(frozen=True, slots=True)
class Timed:
    """One command run to completion, clocked with ``time.monotonic()``."""

    spawned: float  # just before the spawn
    exited: float  # its exit, seen through a pidfd (``Popen.wait`` polls with sleeps of 50 ms)
    stdout: str
    cpu: float  # its CPU seconds (``getrusage`` of the reaped child)
    peak_rss_kib: int = 0  # with ``rss``: the largest VmHWM or VmRSS polled
    first_byte: float | None = None  # with ``watch``: when that file first held a byte

    @property
    def seconds(self) -> float:
        return self.exited - self.spawned

    @property
    def summary(self) -> dict[str, Any]:
        """The last line of its stdout as JSON (``atlas fetch --json``), {} if it printed none."""
        lines = self.stdout.strip().splitlines()
        return dict(json.loads(lines[-1])) if lines else {}


def run_timed(argv: Sequence[str], env: dict[str, str], workdir: Path, name: str, *,
              rss: bool = False, watch: Path | None = None) -> Timed:  # fmt: skip
    """Run one command in ``workdir`` to completion, its output in ``NAME.out|.err`` until it
    exits; BenchError if it exits non-zero or runs over RUN_TIMEOUT (then it is killed)."""
    out, err, first = workdir / f"{name}.out", workdir / f"{name}.err", list[float]()

    def look() -> bool:  # only until the first byte: the poll costs a core's time
        with contextlib.suppress(OSError):
            if watch is not None and watch.stat().st_size > 0:
                first.append(time.monotonic())
        return bool(first)

    cpu = child_cpu_seconds()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        spawned = time.monotonic()
        popen = subprocess.Popen(
            argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=env, cwd=workdir,
            preexec_fn=processes.dies_with(os.getpid()),  # noqa: PLW1509
        )  # fmt: skip
    pidfd = os.pidfd_open(popen.pid)
    try:
        with contextlib.ExitStack() as polls:
            sampler = polls.enter_context(RssSampler(popen.pid, hwm=True)) if rss else None
            if watch is not None:
                polls.enter_context(Poller(look, WATCH_POLL))
            ended = select.select([pidfd], [], [], RUN_TIMEOUT)[0]
            exited = time.monotonic()
        if not ended:
            raise BenchError(f"{name}: did not finish in {RUN_TIMEOUT:.0f} s")
        code, text = popen.wait(), out.read_text(encoding="utf-8", errors="replace")
        if code != 0:
            problem = err.read_text(encoding="utf-8", errors="replace")[-1500:]
            raise BenchError(f"{name}: {argv[0]} exited {code}: {text[-500:]} {problem}")
    finally:
        os.close(pidfd)
        if popen.poll() is None:  # overran, or left early: our own child, by its PID
            popen.kill()
            popen.wait()
        out.unlink(missing_ok=True)
        err.unlink(missing_ok=True)
    cpu = child_cpu_seconds() - cpu
    peak = sampler.peak if sampler else 0
    return Timed(spawned, exited, text, cpu, peak, first[0] if first else None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, process: processes.Process) -> None:
    """Until ``port`` on 127.0.0.1 accepts a connection; BenchError if ``process`` exits
    first or READY_TIMEOUT passes."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and process.returncode is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise BenchError(f"did not listen on port {port}")


@contextlib.contextmanager
def workspace(prefix: str) -> Iterator[Path]:
    """A temporary directory that nginx workers (an unprivileged user) can read; removed."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
