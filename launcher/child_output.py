"""What a child program prints on stdout: its one-line JSON ready line, then its log.

A thread reads the pipe to its end, so the child never blocks on a full pipe: the first
JSON object holding the ready key is kept as the ready line; every other line goes to
the log file, to an ``echo`` callback, and to a short in-memory tail. The two moments a
starter waits for (the ready line read or the pipe ended; the pipe ended) are flags that
threads and ``async`` code can both wait on (:mod:`launcher.processes`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

TAIL_LINES = 200


def resolve(future: asyncio.Future[None]) -> None:
    """Set ``future`` done, unless it already is (or was cancelled)."""
    if not future.done():
        future.set_result(None)


class Flag:
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
                loop.call_soon_threadsafe(resolve, done)

        with self._lock:
            if self._event.is_set():
                return
            self._wakers.append(wake)
        await done


class ChildOutput:
    """A child's stdout, read by a thread from the start."""

    def __init__(self, stdout: IO[str], name: str, log: Path | None,
                 echo: Callable[[str], None] | None, ready_key: str | None) -> None:  # fmt: skip
        self.ready: dict[str, object] = {}
        """The ready line, once read."""
        self.settled = Flag()
        """Set when the ready line was read, or the pipe ended without one."""
        self.ended = Flag()
        self._stdout, self._log, self._echo, self._ready_key = stdout, log, echo, ready_key
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        threading.Thread(target=self._read, name=f"stdout of {name}", daemon=True).start()

    def tail(self, lines: int) -> str:
        """The last ``lines`` lines of the log file, or of stdout if there is none."""
        if self._log is None:
            return "\n".join(list(self._tail)[-lines:])
        try:
            text = self._log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

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
        sink = self._log.open("a", encoding="utf-8") if self._log is not None else None
        try:
            for line in self._stdout:
                if not self.settled.wait(0) and (ready := self._is_ready_line(line)) is not None:
                    self.ready = ready
                    self.settled.set()
                    continue
                self._pass_on(line, sink)
        except (OSError, ValueError):  # the pipe was closed under us
            pass
        finally:
            self._stdout.close()
            if sink is not None:
                sink.close()
            self.settled.set()
            self.ended.set()

    def _pass_on(self, line: str, sink: IO[str] | None) -> None:
        text = line.rstrip()
        self._tail.append(text)
        if sink is not None:
            sink.write(line)
            sink.flush()
        if self._echo is not None:
            self._echo(text)
