"""Smoke test: ``python -m loadtest run proxy --quick`` runs every part and reports every row,
run through ``python -m loadtest bench`` (``make bench``) with the protocol benchmark, so
the combined table, ``performance.md`` and its plot are checked too.

The benchmarks run as subprocesses (``loadtest`` is never imported from the
tests). The proxy benchmark starts a ledger, nginx, a tracker, three paid
edges, ``atlas proxy`` and a plain ``mitmdump`` on 127.0.0.1 and drives them
with ``hey`` and ``curl``; nginx, curl and hey come from the Makefile's SYSTEM_DEPS.
Only the shape of the report and its correctness counts are checked, not the speeds.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.bench_smoke import finite, require_tools, run_suite

SIZES = (16 * 1024, 1024 * 1024)
"""The payload sizes of the quick throughput-by-size curve."""
ROWS = {"small_rps", "latency_added", "latency_p50", "stream_download", "rss_growth"} | {
    f"size_{size}" for size in SIZES
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_proxy_benchmark_in_the_suite(tmp_path: Path) -> None:
    require_tools("nginx", "curl", "hey")
    suite = run_suite(["protocol", "proxy"], tmp_path, timeout=300)
    report = suite.reports["proxy"]
    assert report["failed"] == []
    rows = {row["id"]: row for row in report["results"]}
    assert set(rows) == ROWS
    for name, row in rows.items():
        assert row["unit"] in {"req/s", "ms", "GB/s", "MiB", "MB/s"}, name
        assert finite(row["median"]) and finite(row["reference_median"]), name
        if row["unit"] == "MiB":  # memory growth may be 0 (then the ratio is null)
            assert row["median"] >= 0 and row["reference_median"] >= 0, name
        else:
            assert row["median"] > 0 and row["reference_median"] > 0, name
            assert finite(row["ratio"]) and row["ratio"] > 0, name

    checks = report["checks"]
    totals = checks["rps"]["atlas_totals"]
    assert totals["responses"] > 0
    assert totals["miss"] == 0  # /v1/fetch HITs, or their heads reused while fresh (docs/proxy.md)
    assert totals["served"] >= totals["responses"]  # ... and a paid chunk (voucher or credit)
    assert totals["accepted"] > 0
    for runs in checks["rps"]["runs"].values():
        for run in runs:
            assert set(run["statuses"]) == {"200"} and run["errors"] == 0
    assert checks["stream"]["edge_counters"]["hit"] == report["config"]["stream_reps"]
    assert checks["rss"]["edge_counters"]["miss"] == 1

    sizes = checks["sizes"]
    assert sizes["bytes"] == list(SIZES)
    for path in ("atlas", "mitmdump", "direct"):
        assert len(sizes["median"][path]) == len(SIZES)
        assert all(finite(v) and v > 0 for v in sizes["median"][path]), path

    # The suite's combined table: every row of both benchmarks, once, with its reference.
    table = [re.split(r"\s{2,}", line) for line in suite.stdout.splitlines()]
    for name, bench in suite.reports.items():
        for row in bench["results"]:
            shown = [cells for cells in table if cells[1:2] == [row["operation"]]]
            assert len(shown) == 1 and shown[0][0] == name, row["id"]
    assert "goals: " in suite.stdout and " met, " in suite.stdout

    # The document: the same rows as a Markdown table, the machine, the plot it shows.
    doc = suite.doc
    assert "| benchmark | measurement | Atlas | reference | ratio | goal | met | n |" in doc
    assert all(f"| proxy | {row['operation']} |" in doc for row in rows.values())
    assert "![throughput by payload size](performance-throughput.png)" in doc
    assert report["machine"]["cpu_model"] in doc
    assert suite.plot.read_bytes().startswith(PNG_SIGNATURE)
    assert suite.plot.stat().st_size > 10_000
