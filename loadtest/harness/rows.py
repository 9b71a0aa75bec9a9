"""The one result Row of every benchmark, its units, and the aligned text tables."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
GB = 1e9
CHUNK = 256 * KIB
T = TypeVar("T")


def rotated(reps: int, items: Sequence[T]) -> Iterator[tuple[int, T]]:
    """(repetition, item): every item once per repetition, each repetition starting one item
    further along, so that none always goes first."""
    for rep in range(reps):
        for i in range(len(items)):
            yield rep, items[(rep + i) % len(items)]


def size_text(size: int) -> str:
    """``1 GiB``, ``100 MiB`` or ``16 KiB``: whole units, the largest that fits."""
    if size >= GIB and size % GIB == 0:
        return f"{size // GIB} GiB"
    return f"{size // MIB} MiB" if size >= MIB else f"{size // KIB} KiB"


def rates(work: float, seconds: Sequence[float], scale: float = 1.0) -> list[float]:
    """``work`` per second for each of ``seconds``, divided by ``scale`` (GB for GB/s)."""
    return [work / s / scale for s in seconds]


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    operation: str
    unit: str
    median: float
    reference: str
    reference_median: float
    ratio: float  # median / reference median
    goal: str
    met: bool | None
    samples: list[float]
    reference_samples: list[float]
    extra: dict[str, Any] = field(default_factory=dict)  # more fields of its JSON

    def json(self) -> dict[str, Any]:
        """The row for ``--json``; a ratio against a zero reference (inf) becomes null."""
        out = asdict(self)
        out.update(out.pop("extra"))
        out["ratio"] = self.ratio if math.isfinite(self.ratio) else None
        return out


def make_row(id_: str, operation: str, unit: str, samples: Sequence[float], reference: str,
             reference_samples: Sequence[float], goal: str = "",
             check: Callable[[float, float], bool] | None = None) -> Row:  # fmt: skip
    """A row of medians; ``check(median, ratio)`` says whether ``goal`` is met."""
    median = statistics.median(samples)
    reference_median = statistics.median(reference_samples)
    ratio = median / reference_median if reference_median else math.inf
    met = check(median, ratio) if check is not None else None
    return Row(id_, operation, unit, median, reference, reference_median, ratio, goal, met,
               list(samples), list(reference_samples))  # fmt: skip


def format_value(value: float, unit: str) -> str:
    """A median with the precision its unit deserves."""
    if not math.isfinite(value):
        return str(value)
    if unit in ("GB/s", "s"):
        return f"{value:.3f}"
    if unit in ("ms", "x", "s/GiB"):
        return f"{value:.2f}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


VERDICT = {True: "yes", False: "NO", None: "-"}


def table(header: Sequence[str], cells: Sequence[Sequence[str]], left: Sequence[int]) -> list[str]:
    """Aligned columns: ``left`` ones are left-justified, the others right-justified."""
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.ljust(w) if i in left else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(c) for c in cells)]


def measurement_table(rows: Sequence[Row]) -> list[str]:
    """A benchmark's main table: one line per row, with goal and verdict."""
    header = ("measurement", "median", "unit", "reference median", "ratio", "goal", "met")
    cells = [(r.operation, format_value(r.median, r.unit), r.unit,
              format_value(r.reference_median, r.unit), f"{r.ratio:.2f}", r.goal or "-",
              VERDICT[r.met]) for r in rows]  # fmt: skip
    return table(header, cells, left=(0, 2, 5, 6))


def references(rows: Sequence[Row]) -> list[str]:
    """One line per distinct reference, naming the rows measured against it."""
    users: dict[str, list[str]] = {}
    for row in rows:
        users.setdefault(row.reference, []).append(row.id)
    return [f"  {ref}: {', '.join(ids)}" for ref, ids in users.items()]
