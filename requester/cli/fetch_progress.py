"""What ``atlas fetch`` shows a person while it downloads, and the line it ends with.

On a terminal (stderr a TTY, no ``--json``) a rich bar shows the percentage,
bytes of the total, rate, time left, BTT spent and providers in use; content of
unknown size shows a spinner with bytes and rate instead. Anywhere else nothing
is drawn: logs and pipes get only the closing line (:func:`final_line`).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
)
from rich.table import Column
from rich.text import Text

from requester.cli.amounts import short_amount
from requester.client import Download
from requester.protocol import UNKNOWN_SIZE

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


class SizeColumn(ProgressColumn):
    """Bytes so far, of the total when it is known (``1.2 MiB/2.9 MiB``)."""

    def render(self, task: Task) -> Text:
        done = size_text(int(task.completed))
        return Text(done if task.total is None else f"{done}/{size_text(int(task.total))}")


class RateColumn(ProgressColumn):
    """The rate over the last :data:`RATE_WINDOW` seconds (``FetchBar.update`` sets it), in
    binary units like every other size Atlas prints."""

    def render(self, task: Task) -> Text:
        speed = task.fields.get("rate")
        return Text("?/s" if not speed else f"{size_text(int(speed))}/s")


class EtaColumn(ProgressColumn):
    """``ETA 0:01:05``: what is left at that same rate."""

    def render(self, task: Task) -> Text:
        speed, left = task.fields.get("rate"), (task.total or 0) - task.completed
        if left <= 0:
            return Text("ETA 0:00:00")
        if not speed:
            return Text("ETA -:--:--")
        minutes, seconds = divmod(round(left / speed), 60)
        return Text(f"ETA {minutes // 60}:{minutes % 60:02d}:{seconds:02d}")


def _one_row() -> Column:
    """Text columns never wrap: on an 80-column terminal rich broke ``512.0 KiB/2.9 MiB``
    over two rows; the bar, whose width gives way first, takes what is left."""
    return Column(no_wrap=True)


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
        size = download.head.size_hint
        self._total = None if size == UNKNOWN_SIZE else size
        one = _one_row
        columns: list[ProgressColumn | str] = (
            [BarColumn(bar_width=None, table_column=Column(ratio=1, max_width=40)),
             TaskProgressColumn(table_column=one()), SizeColumn(one()), RateColumn(one()),
             EtaColumn(one())]
            if self._total is not None
            else [SpinnerColumn(table_column=one()), SizeColumn(one()), RateColumn(one())]
        )  # fmt: skip
        columns.append(TextColumn("{task.fields[spent]} spent  {task.fields[providers]}",
                                  table_column=one()))  # fmt: skip
        console = Console(file=sys.stderr, force_terminal=True)
        self._bar = Progress(*columns, console=console, transient=False,
                             expand=self._total is not None)  # fmt: skip
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
