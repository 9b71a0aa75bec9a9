"""The one way Atlas starts a server program and stops it: ``atlas up``, the tests and the
benchmarks all use this runner.

A program is started in its own session (so a terminal's Ctrl-C, or a signal to the
starter's process group, does not reach it) and, by default, set to receive SIGTERM when
the thread that started it dies (``PR_SET_PDEATHSIG``), so a killed test run or benchmark
leaves nothing behind. Each Atlas server prints one JSON line on stdout when it is ready
(``{"listening": URL, ...}``); :func:`start` waits for that line, with a timeout. A thread
reads the rest of stdout, so the program never blocks on a full pipe: its lines go to the
log file (which also takes stderr), to an ``echo`` callback, or to a short in-memory tail.

It is stopped by its PID, never by name: SIGTERM (or a line on its control pipe) to its
process group, a wait, then SIGKILL. The waits come in two kinds with the same outcome:
blocking (tests, benchmarks) and ``async`` (the supervisor of ``atlas up``), the latter
through a pidfd, with no thread left behind when the waiter is cancelled.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
OUTPUT_GRACE = 1.0
"""Seconds to wait, after a program exits, for the last of its stdout to be read."""
TAIL_LINES = 200
PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up once, not in a forked child


class NotReady(RuntimeError):
    """The program did not print its ready line; the message says how it ended."""


def describe_exit(code: int) -> str:
    """How a process ended, in words: ``exited with status 3``, ``was killed by SIGKILL``."""
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Flag:
    """A one-shot flag that both threads and ``async`` code can wait for."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._wakers: list[Callable[[], None]] = []

    def set(self) -> None:
        with self._lock:
            self._event.set()
            wakers, self._wakers = self._wakers, []
        for wake in wakers:
            wake()

    def wait(self, timeout: float | None) -> bool:
        return self._event.wait(timeout)

    async def wait_async(self) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_resolve, done)

        with self._lock:
            if self._event.is_set():
                return
            self._wakers.append(wake)
        await done


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
        self.ready: dict[str, object] = {}
        """Its ready line, once read."""
        self._echo = echo
        self._ready_key = ready_key
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._settled = _Flag()  # the ready line was read, or stdout ended
        self._output_ended = _Flag()
        self._reader = threading.Thread(target=self._read, name=f"stdout of {name}", daemon=True)
        self._reader.start()

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
        if not self._settled.wait(timeout):
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
                await self._settled.wait_async()
        except TimeoutError:
            self._signal_group(signal.SIGKILL)
            await self.wait_async()
            raise NotReady(f"was not ready within {timeout:g} s") from None
        if self.ready:
            return self.ready
        raise NotReady(f"{describe_exit(await self.wait_async())} before it was ready")

    def _is_ready_line(self, line: str) -> dict[str, object] | None:
        try:
            parsed = json.loads(line)
        except ValueError:
            return None
        if not isinstance(parsed, dict):
            return None
        if self._ready_key is not None and not parsed.get(self._ready_key):
            return None
        return parsed

    def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        sink = self.log.open("a", encoding="utf-8") if self.log is not None else None
        try:
            for line in stdout:
                if not self._settled.wait(0) and (ready := self._is_ready_line(line)) is not None:
                    self.ready = ready
                    self._settled.set()
                    continue
                self._pass_on(line, sink)
        except (OSError, ValueError):  # the pipe was closed under us
            pass
        finally:
            stdout.close()
            if sink is not None:
                sink.close()
            self._settled.set()
            self._output_ended.set()

    def _pass_on(self, line: str, sink: IO[str] | None) -> None:
        text = line.rstrip()
        self._tail.append(text)
        if sink is not None:
            sink.write(line)
            sink.flush()
        if self._echo is not None:
            self._echo(text)

    def log_tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of its log file, or of its stdout if it has none."""
        if self.log is None:
            return "\n".join(list(self._tail)[-lines:])
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # --- stopping -------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status, waiting up to ``timeout`` s (``subprocess.TimeoutExpired``)."""
        code = self.proc.wait(timeout)
        self._output_ended.wait(OUTPUT_GRACE)
        return code

    async def wait_async(self) -> int:
        """Its exit status, once it has ended (seen through a pidfd: no thread, no polling)."""
        if self.proc.poll() is None:
            loop = asyncio.get_running_loop()
            exited: asyncio.Future[None] = loop.create_future()
            pidfd = os.pidfd_open(self.pid)
            loop.add_reader(pidfd, _resolve, exited)
            try:
                await exited
            finally:
                loop.remove_reader(pidfd)
                os.close(pidfd)
        code = self.proc.wait()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(OUTPUT_GRACE):
                await self._output_ended.wait_async()
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
            preexec_fn=_dies_with(os.getpid()) if die_with_parent else None,  # noqa: PLW1509
        )
    return Process(name or Path(argv[0]).name, proc, log, echo, ready_key)


def start(
    argv: Sequence[str],
    *,
    ready_timeout: float = READY_TIMEOUT,
    name: str = "",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    log: Path | None = None,
    echo: Callable[[str], None] | None = None,
    control_pipe: bool = False,
    die_with_parent: bool = True,
    ready_key: str | None = "listening",
) -> Process:
    """Start ``argv`` (as :func:`spawn`) and wait for its ready line; NotReady if it does
    not print one within ``ready_timeout`` s (it is killed) or ends first."""
    process = spawn(
        argv,
        name=name,
        env=env,
        cwd=cwd,
        log=log,
        echo=echo,
        control_pipe=control_pipe,
        die_with_parent=die_with_parent,
        ready_key=ready_key,
    )
    process.wait_ready(ready_timeout)
    return process


def _dies_with(parent: int) -> Callable[[], None]:
    """In the child before exec (it only calls prctl): SIGTERM when the starter dies; if it
    died already, before the prctl took effect, stop at once."""

    def set_death_signal() -> None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return set_death_signal
