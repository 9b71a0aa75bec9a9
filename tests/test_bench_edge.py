"""Smoke test: ``loadtest/bench_edge.py --quick`` runs every part and reports every row.

The benchmark runs as a subprocess, as ``make bench`` runs it (``loadtest`` is
never imported from the tests). It starts a ledger, an origin, edges, nginx and
wrk on 127.0.0.1; nginx and wrk come from the Makefile's SYSTEM_DEPS. Only the
shape of the report and its correctness counts are checked, not the speeds.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "loadtest" / "bench_edge.py"

ROWS = {
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


def positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_quick_edge_benchmark_reports_every_row(tmp_path: Path) -> None:
    missing = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None]
    assert not missing, f"{missing} not installed: run `make sysdeps`"
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "reference median" in result.stdout

    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["config"]["mode"] == "quick"
    assert report["failed"] == []
    rows = {row["id"]: row for row in report["results"]}
    assert set(rows) == ROWS
    for name, row in rows.items():
        assert row["operation"] in result.stdout, name
        assert row["unit"] in UNITS, name
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
    assert report["checks"]["stream"]["bytes"] > 0
    assert report["checks"]["pages"]["files"] > 0
