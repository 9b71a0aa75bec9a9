"""Smoke test: ``python -m loadtest run edge --quick`` runs every part and reports every row.

The benchmark runs as a subprocess, as ``make bench`` runs it (``loadtest`` is
never imported from the tests). It starts a ledger, an origin, edges, nginx and
wrk on 127.0.0.1; nginx and wrk come from the Makefile's SYSTEM_DEPS. Only the
shape of the report and its correctness counts are checked, not the speeds.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.bench_smoke import check_rows, positive, require_tools, run_quick

ROWS = {
    "serve_run_bytes",
    "serve_voucher_rps",
    "serve_free_rps",
    "stream_rss_growth",
    "stream_through",
    "stream_stored",
    "pages_wire_html",
    "pages_wire_css",
    "pages_wire_js",
    "pages_wire_all",
    "pages_zstd_cost",
    "pages_fetch_zstd",
}
UNITS = {"req/s", "MiB", "GB/s", "KiB", "ms/MiB"}


@pytest.mark.slow
def test_quick_edge_benchmark_reports_every_row(tmp_path: Path) -> None:
    require_tools("wrk", "nginx")
    run = run_quick("edge", tmp_path, timeout=180)
    report = run.report
    assert report["failed"] == []
    check_rows(run, ROWS, UNITS)
    for name, row in run.rows.items():
        assert positive(row["reference_median"]), name
        if name == "stream_rss_growth":  # may be about 0, or even below after a free()
            assert math.isfinite(row["median"]), name
        else:
            assert positive(row["median"]) and positive(row["ratio"]), name

    serve = report["checks"]["serve"]
    assert serve["voucher_responses"] > 0
    assert serve["voucher_non_2xx"] == 0
    assert serve["nginx_errors"] == 0
    # Every response wrk counted was paid by a voucher the edge accepted.
    assert serve["vouchers_accepted"] >= serve["voucher_responses"]
    assert serve["vouchers_accepted"] <= serve["vouchers_sent"]
    # Every run wrk counted was 16 chunks paid by its voucher (some more were in flight).
    assert serve["run_responses"] > 0 and serve["run_non_2xx"] == 0
    assert serve["run_chunks"] >= 16 * serve["run_responses"]
    assert report["checks"]["stream"]["bytes"] > 0
    assert report["checks"]["pages"]["files"] > 0
