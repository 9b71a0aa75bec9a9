"""What ``atlas fetch`` shows a person while it downloads, and the line it ends with.

On a terminal (stderr a TTY, no ``--json``) a rich bar shows the percentage,
bytes of the total, rate, time left, BTT spent and providers in use; content of
unknown size shows a spinner with bytes and rate instead. Anywhere else nothing
is drawn: logs and pipes get only the closing line (:func:`final_line`).
"""

from __future__ import annotations

import sys
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
    TimeRemainingColumn,
)
from rich.text import Text

from requester.cli.amounts import short_amount
from requester.client import Download
from requester.protocol import UNKNOWN_SIZE

UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


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
    """The recent rate in binary units, like every other size Atlas prints; in the first
    second, the average so far (rich's estimate from two chunks that arrive together
    reads GiB/s)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        elapsed = task.elapsed or 0.0
        if elapsed < 1.0 and not task.finished_speed:
            got = task.completed - task.fields.get("resumed", 0)
            speed = got / elapsed if elapsed > 0.05 and got > 0 else None
        return Text("?/s" if speed is None else f"{size_text(int(speed))}/s")


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
        columns: list[ProgressColumn | str] = (
            [BarColumn(), TaskProgressColumn(), SizeColumn(), RateColumn(), TextColumn("ETA"),
             TimeRemainingColumn()]
            if self._total is not None
            else [SpinnerColumn(), SizeColumn(), RateColumn()]
        )  # fmt: skip
        columns.append(TextColumn("{task.fields[spent]} spent  {task.fields[providers]}"))
        console = Console(file=sys.stderr, force_terminal=True)
        self._bar = Progress(*columns, console=console, transient=False)
        self._task = self._bar.add_task(
            "fetch", total=self._total, completed=done_bytes,
            spent=short_amount(0), providers="", resumed=done_bytes,
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
        self._bar.update(
            self._task, completed=self._done + progress.delivered_bytes,
            spent=short_amount(progress.paid),
            providers=f"{count} provider{'s' if count != 1 else ''}",
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
