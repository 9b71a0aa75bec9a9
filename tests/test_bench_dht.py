"""Smoke test: ``python -m loadtest run dht --quick`` (4 edges and one joining, each on a host
of a namespace network) reports every row, finds the new edge within the issue's 10 s, and
leaves no namespace behind. Root only, as the network is (skipped otherwise)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.harness.netns import sweep_stale, unavailable
from tests.bench_smoke import check_rows, positive, run_quick

ROWS = {
    "dht_listed",
    "dht_advert_found",
    "dht_rendezvous_rate",
    "dht_advert_rate",
    "dht_traffic_hour",
    "dht_edge_rss",
}


@pytest.mark.slow
def test_quick_dht_load_test_reports_every_row(tmp_path: Path) -> None:
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"no namespace network: {reason}")
    run = run_quick("dht", tmp_path, timeout=120)
    assert run.report["failed"] == []
    check_rows(run, ROWS, {"s", "lookups/s", "KiB/h", "MiB"})
    for name, row in run.rows.items():
        assert positive(row["median"]), name
    assert run.rows["dht_advert_found"]["met"] is True
    assert run.report["checks"]["dht_lookups"]["rounds"] >= 2
    checks = run.report["checks"]["dht"]
    assert len(checks["joins"]) == 1
    for host, (_, _, udp_in, udp_out, _, _) in checks["traffic"].items():
        assert udp_in > 0 and udp_out > 0, host  # every edge is in the DHT, even idle
    assert sweep_stale() == []  # the run deleted its namespaces itself
