"""Smoke test: ``loadtest/bench_proxy.py --quick`` runs every part and reports every row.

The benchmark runs as a subprocess, as ``make bench`` runs it (``loadtest`` is
never imported from the tests). It starts a ledger, nginx, a tracker, three
paid edges, ``atlas proxy`` and a plain ``mitmdump`` on 127.0.0.1 and drives
them with ``hey`` (or, where ``hey`` is not installed, its aiohttp fallback)
and ``curl``; nginx and curl come from the Makefile's SYSTEM_DEPS. Only the
shape of the report and its correctness counts are checked, not the speeds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_smoke import check_rows, finite, require_tools, run_quick

ROWS = {"small_rps", "latency_added", "latency_p50", "stream_download", "rss_growth"}


@pytest.mark.slow
def test_quick_proxy_benchmark_reports_every_row(tmp_path: Path) -> None:
    require_tools("nginx", "curl")
    run = run_quick("bench_proxy.py", tmp_path, timeout=240)
    report = run.report
    assert report["failed"] == []
    check_rows(run, ROWS, {"req/s", "ms", "GB/s", "MiB"})
    for name, row in run.rows.items():
        assert finite(row["median"]) and finite(row["reference_median"]), name
        if row["unit"] == "MiB":  # memory growth may be 0 (then the ratio is null)
            assert row["median"] >= 0 and row["reference_median"] >= 0, name
        else:
            assert row["median"] > 0 and row["reference_median"] > 0, name
            assert finite(row["ratio"]) and row["ratio"] > 0, name

    checks = report["checks"]
    totals = checks["rps"]["atlas_totals"]
    assert totals["responses"] > 0
    assert totals["hit"] >= totals["responses"]  # every proxied request: a /v1/fetch HIT
    assert totals["miss"] == 0
    assert totals["served"] >= totals["responses"]  # ... and a paid chunk (voucher or credit)
    assert totals["accepted"] > 0
    for runs in checks["rps"]["runs"].values():
        for run in runs:
            assert set(run["statuses"]) == {"200"} and run["errors"] == 0
    assert checks["stream"]["edge_counters"]["hit"] == report["config"]["stream_reps"]
    assert checks["rss"]["edge_counters"]["miss"] == 1
