"""Smoke test: ``python -m loadtest run sdk --quick`` runs every part and reports every row,
run through ``python -m loadtest bench`` (``make bench``), so the throughput-by-edges plot
and its place in ``performance.md`` are checked too.

The benchmark runs as a subprocess, as ``make bench`` runs it (``loadtest`` is
never imported from the tests). It starts a ledger, nginx, a tracker and five
paid edges on 127.0.0.1 and runs ``atlas fetch`` and ``curl``; nginx comes from
the Makefile's SYSTEM_DEPS. Only the shape of the report and its correctness
counts are checked, not the speeds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_smoke import QuickRun, check_rows, positive, require_tools, run_suite

SCALING = [1, 2, 3, 5]
"""Edge counts of the cached downloads."""
ROWS = {"fetch_first_3", "fetch_peak_rss", "cpu_per_gib_cached_3"} | {
    f"fetch_cached_{k}" for k in SCALING
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_sdk_benchmark_reports_every_row(tmp_path: Path) -> None:
    require_tools("nginx", "curl")
    suite = run_suite(["sdk"], tmp_path, timeout=240)
    report = suite.reports["sdk"]
    assert report["failed"] == []
    run = QuickRun(suite.stdout, report, {row["id"]: row for row in report["results"]})
    check_rows(run, ROWS, {"GB/s", "MiB", "s/GiB"})
    for name, row in run.rows.items():
        assert positive(row["median"]) and positive(row["reference_median"]), name
        assert positive(row["ratio"]), name

    fetch = report["checks"]["fetch"]
    reps = report["config"]["reps"]
    assert fetch["origin_edge_hits"] == len(SCALING) * reps  # cached runs: a HIT at the origin
    assert fetch["origin_edge_misses"] == reps  # first runs: a new fetch from nginx
    assert report["checks"]["rss"]["bytes"] > 0

    # The throughput-by-edges plot: one median per edge count, the curl line, in the document.
    edges = report["checks"]["edges"]
    assert edges["edges"] == SCALING and len(edges["median"]) == len(SCALING)
    assert all(positive(v) for v in [*edges["median"], edges["curl"]])
    assert "![throughput by number of edges](performance-edges.png)" in suite.doc
    assert "| sdk | CPU seconds per GiB delivered, client + serving edges" in suite.doc
    plot = tmp_path / "performance-edges.png"
    assert plot.read_bytes().startswith(PNG_SIGNATURE) and plot.stat().st_size > 10_000
