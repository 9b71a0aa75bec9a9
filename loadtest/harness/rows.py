"""Result rows and the aligned text tables the benchmarks print."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
GB = 1e9
CHUNK = 256 * KIB


def size_text(size: int) -> str:
    """``1 GiB``, ``100 MiB`` or ``16 KiB``: whole units, the largest that fits."""
    if size >= GIB and size % GIB == 0:
        return f"{size // GIB} GiB"
    return f"{size // MIB} MiB" if size >= MIB else f"{size // KIB} KiB"


MEASUREMENT_HEADER = ("measurement", "median", "unit", "reference median", "ratio", "goal", "met")
MEASUREMENT_LEFT = (0, 2, 5, 6)
"""Left-justified columns of the measurement table (the others are right-justified)."""


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    operation: str
    unit: str
    median: float
    reference: str
    reference_median: float
    ratio: float
    """median / reference median (for rates above 1 is faster, for costs above 1 is dearer)."""
    goal: str
    met: bool | None
    samples: list[float]
    reference_samples: list[float]


def make_row(
    id_: str,
    operation: str,
    unit: str,
    samples: Sequence[float],
    reference: str,
    reference_samples: Sequence[float],
    goal: str = "",
    check: Callable[[float, float], bool] | None = None,
) -> Row:
    median = statistics.median(samples)
    reference_median = statistics.median(reference_samples)
    ratio = median / reference_median if reference_median else math.inf
    met = check(median, ratio) if check is not None else None
    return Row(
        id_,
        operation,
        unit,
        median,
        reference,
        reference_median,
        ratio,
        goal,
        met,
        list(samples),
        list(reference_samples),
    )


def table(header: Sequence[str], cells: Sequence[Sequence[str]], left: Sequence[int]) -> list[str]:
    """Aligned columns: ``left`` ones are left-justified, the others right-justified."""
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.ljust(w) if i in left else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(c) for c in cells)]


def measurement_table(rows: Sequence[Row], format_value: Callable[[float, str], str]) -> list[str]:
    """The main table of an end-to-end benchmark: one line per row, with goal and verdict."""
    cells = [
        (
            row.operation,
            format_value(row.median, row.unit),
            row.unit,
            format_value(row.reference_median, row.unit),
            f"{row.ratio:.2f}",
            row.goal or "-",
            {True: "yes", False: "NO", None: "-"}[row.met],
        )
        for row in rows
    ]
    return table(MEASUREMENT_HEADER, cells, left=MEASUREMENT_LEFT)


class Referenced(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def reference(self) -> str: ...


def references(rows: Sequence[Referenced]) -> list[str]:
    """One line per distinct reference, naming the rows measured against it."""
    users: dict[str, list[str]] = {}
    for row in rows:
        users.setdefault(row.reference, []).append(row.id)
    return [f"  {ref}: {', '.join(ids)}" for ref, ids in users.items()]
