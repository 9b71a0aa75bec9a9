"""The one way Atlas starts a server program and stops it: ``atlas up``, the tests and the
benchmarks all use this runner.

A program is started in its own session (so a terminal's Ctrl-C, or a signal to the
starter's process group, does not reach it) and, by default, set to receive SIGTERM when
the thread that started it dies (``PR_SET_PDEATHSIG``), so a killed test run or benchmark
leaves nothing behind. Each Atlas server prints one JSON line on stdout when it is ready
(``{"listening": URL, ...}``); :func:`start` waits for that line, with a timeout. The rest
of its stdout is its log (:mod:`launcher.child_output`), kept with its stderr in a file,
or passed to an ``echo`` callback, and a short tail in memory.

It is stopped by its PID, never by name: SIGTERM (or a line on its control pipe) to its
process group, a wait, then SIGKILL. The waits come in two kinds with the same outcome:
blocking (tests, benchmarks) and ``async`` (the supervisor of ``atlas up``), the latter
through a pidfd, with no thread left behind when the waiter is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypedDict, Unpack

from launcher.child_output import ChildOutput, resolve

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
OUTPUT_GRACE = 1.0
"""Seconds to wait, after a program exits, for the last of its stdout to be read."""
PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up once, not in a forked child


class NotReady(RuntimeError):
    """The program did not print its ready line; the message says how it ended."""


def describe_exit(code: int) -> str:
    """How a process ended, in words: ``exited with status 3``, ``was killed by SIGKILL``."""
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


class Process:
    """A program this process started, its ready line, and its output."""

    def __init__(
        self,
        name: str,
        proc: subprocess.Popen[str],
        log: Path | None,
        echo: Callable[[str], None] | None,
        ready_key: str | None,
    ) -> None:
        self.name = name
        self.proc = proc
        self.log = log
        """The file that holds its stderr and stdout (None: stderr is inherited)."""
        assert proc.stdout is not None
        self._output = ChildOutput(proc.stdout, name, log, echo, ready_key)

    @property
    def ready(self) -> dict[str, object]:
        """Its ready line (the whole JSON object), once read."""
        return self._output.ready

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        """The ready line's ``listening`` address."""
        return str(self.ready["listening"])

    @property
    def returncode(self) -> int | None:
        """Its exit status once it ended (negative: the signal that ended it), else None."""
        return self.proc.poll()

    # --- the ready line ---------------------------------------------------------------------

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> dict[str, object]:
        """Its ready line; if none comes within ``timeout`` s it is killed. Raises NotReady."""
        if not self._output.settled.wait(timeout):
            self.kill9()
            raise NotReady(f"was not ready within {timeout:g} s")
        if self.ready:
            return self.ready
        raise NotReady(f"{describe_exit(self.wait())} before it was ready")

    async def wait_ready_async(
        self,
        timeout: float = READY_TIMEOUT,  # noqa: ASYNC109 (past it the program is killed)
    ) -> dict[str, object]:
        """:meth:`wait_ready`, awaited."""
        try:
            async with asyncio.timeout(timeout):
                await self._output.settled.wait_async()
        except TimeoutError:
            self._signal_group(signal.SIGKILL)
            await self.wait_async()
            raise NotReady(f"was not ready within {timeout:g} s") from None
        if self.ready:
            return self.ready
        raise NotReady(f"{describe_exit(await self.wait_async())} before it was ready")

    def log_tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of its log file, or of its stdout if it has none."""
        return self._output.tail(lines)

    # --- stopping -------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status, waiting up to ``timeout`` s (``subprocess.TimeoutExpired``)."""
        code = self.proc.wait(timeout)
        self._output.ended.wait(OUTPUT_GRACE)
        return code

    async def wait_async(self) -> int:
        """Its exit status, once it has ended (seen through a pidfd: no thread, no polling)."""
        if self.proc.poll() is None:
            loop = asyncio.get_running_loop()
            exited: asyncio.Future[None] = loop.create_future()
            pidfd = os.pidfd_open(self.pid)
            loop.add_reader(pidfd, resolve, exited)
            try:
                await exited
            finally:
                loop.remove_reader(pidfd)
                os.close(pidfd)
        code = self.proc.wait()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(OUTPUT_GRACE):
                await self._output.ended.wait_async()
        return code

    def stop(
        self,
        timeout: float = STOP_TIMEOUT,
        sig: int = signal.SIGTERM,
        stop_line: str | None = None,
    ) -> int:
        """Ask it to stop (``sig`` to its group, or ``stop_line`` on its control pipe), wait up
        to ``timeout`` s, then SIGKILL its group; its exit status."""
        self._ask_to_stop(sig, stop_line)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            return self.wait()

    async def stop_async(
        self,
        timeout: float = STOP_TIMEOUT,  # noqa: ASYNC109 (past it the program is killed)
        sig: int = signal.SIGTERM,
        stop_line: str | None = None,
        lingers: Callable[[], None] | None = None,
    ) -> int:
        """:meth:`stop`, awaited; ``lingers`` is called before the SIGKILL."""
        self._ask_to_stop(sig, stop_line)
        try:
            async with asyncio.timeout(timeout):
                return await self.wait_async()
        except TimeoutError:
            if lingers is not None:
                lingers()
            self._signal_group(signal.SIGKILL)
            return await self.wait_async()

    def kill9(self) -> int:
        """SIGKILL its group (a crash, as far as it can tell); its exit status."""
        self._signal_group(signal.SIGKILL)
        return self.wait()

    def _ask_to_stop(self, sig: int, stop_line: str | None) -> None:
        if stop_line is None:
            self._signal_group(sig)
        stdin = self.proc.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError, ValueError):
                if stop_line is not None:
                    stdin.write(stop_line)
                    stdin.flush()
                stdin.close()

    def _signal_group(self, sig: int) -> None:
        """``sig`` to its process group, only while it is not reaped (so its PID is ours)."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


class Options(TypedDict, total=False):
    """:func:`spawn`'s options, which :func:`start` passes on."""

    name: str
    env: dict[str, str] | None
    cwd: Path | None
    log: Path | None
    echo: Callable[[str], None] | None
    control_pipe: bool
    die_with_parent: bool
    ready_key: str | None


def spawn(
    argv: Sequence[str],
    *,
    name: str = "",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    log: Path | None = None,
    echo: Callable[[str], None] | None = None,
    control_pipe: bool = False,
    die_with_parent: bool = True,
    ready_key: str | None = "listening",
) -> Process:
    """Start ``argv`` without waiting for its ready line (see :meth:`Process.wait_ready`).

    ``env`` is set on top of this process's environment. With ``log``, its stderr and
    the stdout lines other than the ready line go to that file (appended); without,
    its stderr is this process's. ``echo`` gets each such stdout line too. With
    ``control_pipe`` its stdin is a pipe (:meth:`Process.stop` can send it a line, and
    it sees end-of-file when this process dies), else /dev/null. ``ready_key``: the
    ready line is the first JSON object on stdout holding this key (None: any object).
    """
    with contextlib.ExitStack() as files:
        stderr = files.enter_context(log.open("ab")) if log is not None else None
        proc = subprocess.Popen(  # noqa: S603 (argv is the caller's own program)
            list(argv),
            stdin=subprocess.PIPE if control_pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
            preexec_fn=dies_with(os.getpid()) if die_with_parent else None,  # noqa: PLW1509
        )
    return Process(name or Path(argv[0]).name, proc, log, echo, ready_key)


def start(
    argv: Sequence[str], *, ready_timeout: float = READY_TIMEOUT, **options: Unpack[Options]
) -> Process:
    """Start ``argv`` (as :func:`spawn`, with its options) and wait for its ready line;
    NotReady if it does not print one within ``ready_timeout`` s (it is killed) or ends
    first."""
    process = spawn(argv, **options)
    process.wait_ready(ready_timeout)
    return process


def dies_with(parent: int) -> Callable[[], None]:
    """A ``preexec_fn`` (it only calls prctl): the child gets SIGTERM when ``parent`` (the
    starter's PID; strictly, the thread that forks) dies; if it died already, before the
    prctl took effect, the child stops at once. For a ``Popen`` of one's own (a command run
    to completion): ``preexec_fn=dies_with(os.getpid())``."""

    def set_death_signal() -> None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return set_death_signal
