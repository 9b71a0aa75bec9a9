"""CPU time of processes, from ``/proc`` and ``getrusage``."""

from __future__ import annotations

import contextlib
import os
import resource
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its live children (nginx workers), in seconds."""
    total = 0.0
    for one in [pid, *children_of(pid)]:
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = Path(f"/proc/{one}/stat").read_text(encoding="ascii", errors="replace")
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def system_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (``/proc/stat``, not idle or iowait)."""
    fields = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()[1:]
    ticks = [int(f) for f in fields]
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]  # user..steal minus idle and iowait
    return busy / CLK_TCK


def own_cpu_seconds() -> float:
    """This process and its waited-for children (every process it started, once stopped)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
