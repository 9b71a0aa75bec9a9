"""The rich bar of :class:`requester.cli.fetch_progress.FetchBar`: its columns, and the
bar itself. Imported only when a bar is drawn (rich costs ~30 ms of every start)."""

from __future__ import annotations

import sys

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

from requester.cli.fetch_progress import size_text


class SizeColumn(ProgressColumn):
    """Bytes so far, of the total when it is known (``1.2 MiB/2.9 MiB``)."""

    def render(self, task: Task) -> Text:
        done = size_text(int(task.completed))
        return Text(done if task.total is None else f"{done}/{size_text(int(task.total))}")


class RateColumn(ProgressColumn):
    """The rate over the last ``RATE_WINDOW`` seconds (``FetchBar.update`` sets it), in
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


def live_bar(total: int | None) -> Progress:
    """The bar on stderr for a download of ``total`` bytes (None: unknown, a spinner)."""
    one = _one_row
    columns: list[ProgressColumn | str] = (
        [BarColumn(bar_width=None, table_column=Column(ratio=1, max_width=40)),
         TaskProgressColumn(table_column=one()), SizeColumn(one()), RateColumn(one()),
         EtaColumn(one())]
        if total is not None
        else [SpinnerColumn(table_column=one()), SizeColumn(one()), RateColumn(one())]
    )  # fmt: skip
    columns.append(TextColumn("{task.fields[spent]} spent  {task.fields[providers]}",
                              table_column=one()))  # fmt: skip
    console = Console(file=sys.stderr, force_terminal=True)
    return Progress(*columns, console=console, transient=False, expand=total is not None)
