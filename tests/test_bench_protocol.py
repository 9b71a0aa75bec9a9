"""Smoke test: ``loadtest/bench_protocol.py --quick`` runs and reports every operation.

The benchmark runs as a subprocess, as ``make bench`` runs it; ``loadtest`` is
never imported from the tests. Only the shape of the report is checked, not
the speeds, which depend on the machine.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "loadtest" / "bench_protocol.py"

OPERATIONS = {
    "voucher_sign",
    "voucher_verify",
    "payee_charge",
    "statement_sign",
    "statement_verify",
    "manifest_build_time",
    "manifest_build_rate",
    "manifest_verify_time",
    "manifest_verify_rate",
    "chunk_hash_statement",
    "chunk_hash_check",
}
NUMBERS = ("median", "reference_median", "ratio", "work")
MACHINE_FACTS = ("cpu_model", "cores", "python", "date")


def positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_quick_benchmark_reports_every_operation(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "reference median" in result.stdout

    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["config"]["mode"] == "quick"
    for fact in MACHINE_FACTS:
        assert report["machine"][fact], fact

    rows = {row["id"]: row for row in report["results"]}
    assert set(rows) == OPERATIONS
    reps = report["config"]["reps"]
    for name, row in rows.items():
        assert row["operation"] in result.stdout, name
        assert row["unit"] in ("ops/s", "GB/s", "s"), name
        for field in NUMBERS:
            assert positive(row[field]), f"{name}.{field} = {row[field]!r}"
        for series in ("samples", "reference_samples"):
            assert len(row[series]) == reps, f"{name}.{series}"
            assert all(positive(v) for v in row[series]), f"{name}.{series}"
