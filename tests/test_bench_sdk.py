"""Smoke test: ``python -m loadtest run sdk --quick`` runs every part and reports every row.

The benchmark runs as a subprocess, as ``make bench`` runs it (``loadtest`` is
never imported from the tests). It starts a ledger, nginx, a tracker and three
paid edges on 127.0.0.1 and runs ``atlas fetch`` and ``curl``; nginx comes from
the Makefile's SYSTEM_DEPS. Only the shape of the report and its correctness
counts are checked, not the speeds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_smoke import check_rows, positive, require_tools, run_quick

ROWS = {"fetch_first_3", "fetch_cached_3", "fetch_cached_1", "fetch_cached_2", "fetch_peak_rss"}


@pytest.mark.slow
def test_quick_sdk_benchmark_reports_every_row(tmp_path: Path) -> None:
    require_tools("nginx", "curl")
    run = run_quick("sdk", tmp_path, timeout=180)
    report = run.report
    assert report["failed"] == []
    check_rows(run, ROWS, {"GB/s", "MiB"})
    for name, row in run.rows.items():
        assert positive(row["median"]) and positive(row["reference_median"]), name
        assert positive(row["ratio"]), name

    fetch = report["checks"]["fetch"]
    reps = report["config"]["reps"]
    assert fetch["origin_edge_hits"] == 3 * reps  # cached runs: a HIT at the origin edge
    assert fetch["origin_edge_misses"] == reps  # first runs: a new fetch from nginx
    assert report["checks"]["rss"]["bytes"] > 0
