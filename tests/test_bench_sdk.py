"""Smoke test: ``loadtest/bench_sdk.py --quick`` runs every part and reports every row.

The benchmark runs as a subprocess, as ``make bench`` runs it (``loadtest`` is
never imported from the tests). It starts a ledger, nginx, a tracker and three
paid edges on 127.0.0.1 and runs ``atlas fetch`` and ``curl``; nginx comes from
the Makefile's SYSTEM_DEPS. Only the shape of the report and its correctness
counts are checked, not the speeds.
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
BENCH = ROOT / "loadtest" / "bench_sdk.py"

ROWS = {"fetch_first_3", "fetch_cached_3", "fetch_cached_1", "fetch_cached_2", "fetch_peak_rss"}


def positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_quick_sdk_benchmark_reports_every_row(tmp_path: Path) -> None:
    missing = [tool for tool in ("nginx", "curl") if shutil.which(tool) is None]
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
    assert "chunks per provider" in result.stdout

    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["config"]["mode"] == "quick"
    assert report["failed"] == []
    rows = {row["id"]: row for row in report["results"]}
    assert set(rows) == ROWS
    for name, row in rows.items():
        assert row["operation"] in result.stdout, name
        assert row["unit"] in {"GB/s", "MiB"}, name
        assert positive(row["median"]) and positive(row["reference_median"]), name
        assert positive(row["ratio"]), name

    fetch = report["checks"]["fetch"]
    reps = report["config"]["reps"]
    assert fetch["origin_edge_hits"] == 3 * reps  # cached runs: a HIT at the origin edge
    assert fetch["origin_edge_misses"] == reps  # first runs: a new fetch from nginx
    per_provider = fetch["chunks_per_provider"]
    chunks = -(-report["config"]["size"] // (256 * 1024))
    for setup, edges in (("cached1", 1), ("cached2", 2), ("cached3", 3), ("first3", 3)):
        for counts in per_provider[setup]:
            assert len(counts) == edges, (setup, counts)
            assert sum(counts.values()) >= chunks, (setup, counts)
    assert report["checks"]["rss"]["bytes"] > 0
