"""CPU, run-queue wait and memory of the network's servers, read from /proc (Linux)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from loadtest.harness.procfs import (
    Poller,
    cpu_seconds,
    proc_status,
    reset_peak_rss,
    runqueue_wait_s,
)


@dataclass(frozen=True)
class ProcSample:
    rss_kib: int
    hwm_kib: int
    cpu_s: float


def samples(roles: dict[str, int]) -> dict[str, ProcSample]:
    """RSS, peak RSS (VmHWM) and CPU seconds of each process still running."""
    out = {}
    for role, pid in roles.items():
        with contextlib.suppress(OSError, ValueError):
            status = proc_status(pid)
            out[role] = ProcSample(status.get("VmRSS", 0), status.get("VmHWM", 0), cpu_seconds(pid))
    return out


def reset_peaks(roles: dict[str, int]) -> None:
    """VmHWM back to the current RSS, so that a peak is per run."""
    for pid in roles.values():
        reset_peak_rss(pid)


class CpuSampler:
    """The CPU seconds and run-queue wait of each process every 0.5 s, so that the CPU share
    can be taken over exactly the window locust measured (not its start and stop)."""

    def __init__(self, roles: dict[str, int]) -> None:
        self.roles = roles
        self.series: list[tuple[float, dict[str, float]]] = []
        self._poller = Poller(self._sample, 0.5)

    def __enter__(self) -> CpuSampler:
        return self

    def __exit__(self, *_: object) -> None:
        self._poller.stop()

    def _sample(self) -> None:
        now = time.time()
        point = {r: s.cpu_s for r, s in samples(self.roles).items()}
        for role, pid in self.roles.items():
            with contextlib.suppress(OSError):  # it ended
                point[f"{role}:runq"] = runqueue_wait_s(pid)
        self.series.append((now, point))

    def percent(self, window: tuple[float, float] | None) -> dict[str, float]:
        """Per process, between two wall-clock times (nearest samples): CPU % (``role``) and
        % of the time its threads waited for a CPU while runnable (``role:runq``)."""
        inside = [(t, cpu) for t, cpu in self.series if window and window[0] <= t <= window[1]]
        if len(inside) < 2:
            return {}
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return {r: round(100 * (c1[r] - c0[r]) / (t1 - t0), 1) for r in c0 if r in c1}
