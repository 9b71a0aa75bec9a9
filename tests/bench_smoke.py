"""What the smoke tests of ``python -m loadtest run NAME --quick`` share.

A benchmark runs as a subprocess, as ``make bench`` runs it (``loadtest`` is never
imported from the tests); only the shape of its report and its correctness counts are
checked, not the speeds, which depend on the machine.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    assert not missing, f"{missing} not installed: run `make sysdeps`"


@dataclass(frozen=True, slots=True)
class QuickRun:
    stdout: str
    report: dict[str, Any]
    """The ``--json`` report."""
    rows: dict[str, dict[str, Any]]
    """Its results by id."""


def run_quick(name: str, tmp_path: Path, *, timeout: float) -> QuickRun:
    """``python -m loadtest run NAME --quick --json FILE``: it must exit 0, print the table and
    report quick mode."""
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "loadtest", "run", name, "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "reference median" in result.stdout

    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["config"]["mode"] == "quick"
    rows = {row["id"]: row for row in report["results"]}
    return QuickRun(result.stdout, report, rows)


def check_rows(run: QuickRun, expected: Collection[str], units: Collection[str]) -> None:
    """Every expected row and no other, each printed, each in one of ``units``."""
    assert set(run.rows) == set(expected)
    for name, row in run.rows.items():
        assert row["operation"] in run.stdout, name
        assert row["unit"] in units, name


@dataclass(frozen=True, slots=True)
class SuiteRun:
    stdout: str
    reports: dict[str, dict[str, Any]]
    """Each benchmark's ``--json`` report, by name."""
    doc: str
    """The performance document it wrote."""
    plot: Path


def run_suite(names: Collection[str], tmp_path: Path, *, timeout: float) -> SuiteRun:
    """``python -m loadtest bench --quick --only NAME ...``, its reports and document in
    ``tmp_path``: it must exit 0."""
    argv = [sys.executable, "-m", "loadtest", "bench", "--quick"]
    for name in names:
        argv += ["--only", name]
    argv += ["--reports", str(tmp_path), "--doc", str(tmp_path / "performance.md")]
    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reports = {
        name: json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8")) for name in names
    }
    for report in reports.values():
        assert report["config"]["mode"] == "quick"
    doc = (tmp_path / "performance.md").read_text(encoding="utf-8")
    return SuiteRun(result.stdout, reports, doc, tmp_path / "performance-throughput.png")
