"""Smoke test: ``python -m loadtest run torrent --quick`` runs both parts and reports every row.

The benchmark runs as a subprocess, as ``make bench`` runs it (``loadtest`` is never
imported from the tests). It starts a ledger, a libtorrent seeder, fresh edges and the
clients on 127.0.0.1. Only the shape of the report and its correctness counts are
checked, not the speeds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_smoke import check_rows, positive, run_quick

ROWS = {
    "torrent_first_byte",
    "torrent_throughput",
    "torrent_cached_first_byte",
    "torrent_cached_throughput",
    "torrent_limited_first_byte",
    "torrent_limited_throughput",
}


@pytest.mark.slow
def test_quick_torrent_benchmark_reports_every_row(tmp_path: Path) -> None:
    run = run_quick("torrent", tmp_path, timeout=180)
    report = run.report
    assert report["failed"] == []
    assert "timeline" in run.stdout
    check_rows(run, ROWS, {"ms", "MiB/s"})
    for name, row in run.rows.items():
        assert positive(row["median"]) and positive(row["reference_median"]), name
        assert positive(row["ratio"]), name

    for part, methods in (("unlimited", {"plain", "first", "cached"}),
                          ("limited", {"plain", "first"})):  # fmt: skip
        checks = report["checks"][part]
        reps = checks["reps"]
        assert set(checks["runs"]) == methods, part
        for method in methods:
            runs = checks["runs"][method]
            assert len(runs) == reps, (part, method)
            for timeline in runs:
                assert timeline["exit"] > 0, (part, method, timeline)
        summaries = checks["summaries"]
        assert len(summaries) == reps * (len(methods) - 1), part
        for summary in summaries:
            assert summary["bytes"] == checks["bytes"] and summary["status"] == 200, summary
            assert not summary["dropped"], summary
