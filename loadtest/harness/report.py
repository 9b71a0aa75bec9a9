"""A benchmark's outcome (rows, notes, checks, sections, failed parts), its parts run one
by one, the text report and the ``--json`` report."""

from __future__ import annotations

import inspect
import json
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.harness.rows import Row

Part = Callable[[], Awaitable[list[Row]] | list[Row]]
"""A part of a benchmark: measures and returns its rows (a coroutine function, or not)."""


@dataclass
class Outcome:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    """Counts behind the rows (requests refused, vouchers accepted, ...) for --json."""
    sections: dict[str, list[str]] = field(default_factory=dict)
    """Extra tables printed after the main one."""
    failed: list[str] = field(default_factory=list)

    def fail(self, name: str, exc: Exception) -> None:
        """Record that ``name`` failed with ``exc`` (its traceback goes to stderr)."""
        traceback.print_exc()
        self.failed.append(name)
        self.notes.append(f"{name}: FAILED: {type(exc).__name__}: {exc}")


async def run_parts(parts: Mapping[str, Part], only: Sequence[str], outcome: Outcome) -> None:
    """Every part named in ``only``, each in its own try: one failing does not hide the others."""
    for name, part in parts.items():
        if name not in only:
            continue
        started = time.perf_counter()
        try:
            rows = part()
            outcome.rows += await rows if inspect.isawaitable(rows) else rows
        except Exception as exc:
            outcome.fail(name, exc)
        outcome.notes.append(f"{name}: took {time.perf_counter() - started:.1f} s")


def render(
    head: Sequence[str],
    table: Sequence[str],
    references: Sequence[str],
    notes: Sequence[str],
    sections: dict[str, list[str]] | None = None,
) -> str:
    """A report: its head lines, a blank line, the table, the extra sections, the references
    and the notes."""
    out = [*head, "", *table]
    for title, lines in (sections or {}).items():
        out += ["", f"{title}:", *(f"  {line}" for line in lines)]
    out += ["", "references:", *references, "", "notes:", *(f"  {note}" for note in notes)]
    return "\n".join(out)


def write_json(
    path: Path | None,
    benchmark: str,
    *,
    machine: dict[str, Any],
    config: dict[str, Any],
    wall_time_s: float,
    outcome: Outcome,
) -> None:
    """The ``--json`` report (nothing when ``path`` is None)."""
    if path is None:
        return
    report = {
        "benchmark": benchmark,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine,
        "config": config,
        "wall_time_s": wall_time_s,
        "failed": outcome.failed,
        "notes": outcome.notes,
        "checks": outcome.checks,
        "sections": outcome.sections,
        "results": [row.json() for row in outcome.rows],
    }
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
