"""What ``atlas fetch`` shows a person while it downloads, and the line it ends with.

On a terminal (stderr a TTY, no ``--json``) a rich bar shows the percentage,
bytes of the total, rate, time left, BTT spent and providers in use; content of
unknown size shows a spinner with bytes and rate instead. Anywhere else nothing
is drawn: logs and pipes get only the closing line (:func:`final_line`).
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from requester.cli.amounts import short_amount
from requester.protocol import UNKNOWN_SIZE

if TYPE_CHECKING:
    from rich.progress import Progress

    from requester.client import Download

UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
RATE_WINDOW = 5.0
"""Seconds of history behind the rate and the ETA (rich's own estimate, from the chunks
that arrived together last, read GiB/s on a 2 MiB/s download)."""


def size_text(size: object) -> str:
    """``1.5 MiB``, ``300.0 KiB``, ``512 B``; ``size unknown`` for anything but a count."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return "size unknown"
    value, unit = float(size), 0
    while value >= 1024 and unit < len(UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{size} B" if unit == 0 else f"{value:.1f} {UNITS[unit]}"


def providers_in_use(download: Download) -> int:
    """Providers that delivered a chunk of this download and are still asked for more."""
    return sum(1 for s in download.progress.providers.values() if s.chunks and not s.dropped)


class FetchBar:
    """The live bar of one download on stderr; a no-op when ``shown`` is False.

    ``done_bytes`` is what a resumed download already has on disk (counted, not
    paid again)."""

    def __init__(self, download: Download, *, shown: bool, done_bytes: int = 0) -> None:
        self._download, self._done = download, done_bytes
        self._bar: Progress | None = None
        if not shown:
            return
        from requester.cli.fetch_bar import live_bar  # rich: only when a bar is drawn

        size = download.head.size_hint
        self._total = None if size == UNKNOWN_SIZE else size
        self._bar = live_bar(self._total)
        self._samples = deque([(time.monotonic(), done_bytes)])
        self._task = self._bar.add_task(
            "fetch", total=self._total, completed=done_bytes,
            spent=short_amount(0), providers="", rate=None,
        )  # fmt: skip

    def __enter__(self) -> FetchBar:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        if self._bar is not None:
            self.update()
            self._bar.stop()

    def update(self) -> None:
        """Bring the bar up to what the download has delivered and paid so far."""
        if self._bar is None:
            return
        progress, count = self._download.progress, providers_in_use(self._download)
        now, completed = time.monotonic(), self._done + progress.delivered_bytes
        self._samples.append((now, completed))
        while len(self._samples) > 2 and self._samples[1][0] <= now - RATE_WINDOW:
            self._samples.popleft()  # keeps the last sample at or before the window's start
        since, then = self._samples[0]
        rate = (completed - then) / (now - since) if now - since > 0.01 else None
        self._bar.update(
            self._task, completed=completed, spent=short_amount(progress.paid),
            providers=f"{count} provider{'s' if count != 1 else ''}", rate=rate,
        )  # fmt: skip


def final_line(summary: dict[str, Any], output: Path | None) -> str:
    """The one line a finished fetch prints on stderr: where, how much, how fast, what it cost."""
    seconds = max(float(summary["seconds"]), 1e-3)
    rate = size_text(round(summary["bytes"] / seconds))
    count = sum(1 for p in summary["providers"].values() if p["chunks"])
    where = f"saved {output}" if output is not None else "wrote stdout"
    return (
        f"atlas: {where}: {size_text(summary['bytes'])} in {seconds:.1f} s ({rate}/s), "
        f"paid {short_amount(int(summary['paid']))}, "
        f"{count} provider{'s' if count != 1 else ''}"
    )
