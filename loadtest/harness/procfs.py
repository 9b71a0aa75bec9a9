"""CPU time and resident memory of processes, from ``/proc`` and ``getrusage`` (Linux)."""

from __future__ import annotations

import contextlib
import os
import resource
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Self

RSS_POLL = 0.01
"""Seconds between two polls of a process's memory."""
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_status(pid: int) -> dict[str, int]:
    """The memory fields of ``/proc/PID/status`` (VmRSS, VmHWM, ...), in KiB."""
    lines = Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines()
    return {n: int(v.split()[0]) for n, _, v in (x.partition(":") for x in lines) if n[:2] == "Vm"}


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs 5); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


class Poller:
    """Calls ``poll()`` every ``every`` s in a daemon thread, from its creation until ``stop``
    (or until ``poll`` returns True); also a context manager."""

    def __init__(self, poll: Callable[[], bool | None], every: float = RSS_POLL) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(poll, every), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, poll: Callable[[], bool | None], every: float) -> None:
        while not self._stop.is_set() and not poll():
            self._stop.wait(every)


class RssSampler(Poller):
    """Polls ``pid``'s VmRSS (with ``hwm``, also VmHWM, the kernel's own high-water mark, so a
    peak between two polls is not missed) every RSS_POLL s, from its creation to ``stop``;
    ``peak`` is the largest value seen (KiB). Stops polling when ``pid`` ends."""

    def __init__(self, pid: int, *, hwm: bool = False) -> None:
        self.pid, self.peak = pid, 0
        self._fields = ("VmRSS", "VmHWM") if hwm else ("VmRSS",)
        super().__init__(self._sample)

    def _sample(self) -> bool:
        try:
            status = proc_status(self.pid)
            self.peak = max(self.peak, *(status[name] for name in self._fields))
        except (OSError, ValueError, KeyError):
            return True  # it ended (or is a zombie without memory)
        return False


class RssGrowth(RssSampler):
    """How far ``pid``'s RSS rises above its VmRSS at the start of a ``with`` block: the
    largest VmRSS polled or, if VmHWM could be reset at the start (``hwm_reset``), VmHWM."""

    def __init__(self, pid: int) -> None:
        self.base, self.hwm_reset = proc_status(pid)["VmRSS"], reset_peak_rss(pid)
        super().__init__(pid, hwm=self.hwm_reset)

    @property
    def growth_kib(self) -> int:
        return self.peak - self.base

    def stop(self) -> None:
        super().stop()
        self._sample()  # once more at the end


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its live children (nginx workers), in seconds."""
    total = 0.0
    for one in [pid, *children_of(pid)]:
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = Path(f"/proc/{one}/stat").read_text(encoding="ascii", errors="replace")
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def cpu_clock(pids: Mapping[str, int]) -> Callable[[], dict[str, float]]:
    """Starts a clock: the function returned gives the CPU seconds each of ``pids`` (by name)
    used since."""
    start = {name: cpu_seconds(pid) for name, pid in pids.items()}
    return lambda: {name: cpu_seconds(pid) - start[name] for name, pid in pids.items()}


def children_of(pid: int) -> list[int]:
    """The PIDs whose parent is ``pid``, sorted."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return sorted(found)


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
