"""Smoke test: ``python -m loadtest run protocol --quick`` runs and reports every operation.

The benchmark runs as a subprocess, as ``make bench`` runs it; ``loadtest`` is
never imported from the tests. Only the shape of the report is checked, not
the speeds, which depend on the machine.
"""

from __future__ import annotations

from pathlib import Path

from tests.bench_smoke import check_rows, positive, run_quick

OPERATIONS = {
    "voucher_sign",
    "voucher_verify",
    "payee_charge",
    "statement_sign",
    "statement_verify",
    "manifest_build_rate",
    "manifest_verify_rate",
    "chunk_hash_statement",
    "chunk_hash_check",
}
NUMBERS = ("median", "reference_median", "ratio", "work")
MACHINE_FACTS = ("cpu_model", "cores", "python", "date")


def test_quick_benchmark_reports_every_operation(tmp_path: Path) -> None:
    run = run_quick("protocol", tmp_path, timeout=20)
    report = run.report
    for fact in MACHINE_FACTS:
        assert report["machine"][fact], fact

    check_rows(run, OPERATIONS, ("ops/s", "GB/s"))
    reps = report["config"]["reps"]
    for name, row in run.rows.items():
        for field in NUMBERS:
            assert positive(row[field]), f"{name}.{field} = {row[field]!r}"
        for series in ("samples", "reference_samples"):
            assert len(row[series]) == reps, f"{name}.{series}"
            assert all(positive(v) for v in row[series]), f"{name}.{series}"
