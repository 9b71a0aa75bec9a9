"""Smoke test: ``loadtest/bench_proxy.py --quick`` runs every part and reports every row.

The benchmark runs as a subprocess, as ``make bench`` runs it (``loadtest`` is
never imported from the tests). It starts a ledger, nginx, a tracker, three
paid edges, ``atlas proxy`` and a plain ``mitmdump`` on 127.0.0.1 and drives
them with ``hey`` (or, where ``hey`` is not installed, its aiohttp fallback)
and ``curl``; nginx and curl come from the Makefile's SYSTEM_DEPS. Only the
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
BENCH = ROOT / "loadtest" / "bench_proxy.py"

ROWS = {"small_rps", "latency_added", "latency_p50", "stream_download", "rss_growth"}


def finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@pytest.mark.slow
def test_quick_proxy_benchmark_reports_every_row(tmp_path: Path) -> None:
    missing = [tool for tool in ("nginx", "curl") if shutil.which(tool) is None]
    assert not missing, f"{missing} not installed: run `make sysdeps`"
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
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
        assert row["unit"] in {"req/s", "ms", "GB/s", "MiB"}, name
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
