"""Resident memory of a process, from ``/proc/PID/status`` (Linux)."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from loadtest.harness.children import BenchError

RSS_POLL = 0.01
"""Seconds between two polls of a process's memory."""


def proc_status_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {field_name}")


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of ``pid`` (KiB), those of the two it has."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            out[name] = int(value.split()[0])
    return out


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs 5); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


class RssSampler:
    """Polls VmRSS of ``pid`` in a thread and keeps the largest value (KiB)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, BenchError):
                self.peak = max(self.peak, proc_status_kib(self.pid, "VmRSS"))
            self._stop.wait(RSS_POLL)


class PeakRss:
    """Polls VmHWM and VmRSS of ``pid`` in a thread; ``peak`` is the largest seen (KiB).

    VmHWM is the kernel's own high-water mark, so a peak between two polls is not missed
    unless it falls in the last 10 ms before the process exits."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status = proc_status(self.pid)
            except (OSError, ValueError):
                return  # exited (or a zombie without memory)
            self.peak = max(self.peak, *status.values(), 0)
            self.polls += 1
            self._stop.wait(RSS_POLL)
