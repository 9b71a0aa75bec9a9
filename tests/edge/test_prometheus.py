"""Debian's real ``prometheus`` scrapes a live edge after a paid download, and every query
of the Grafana dashboard in the repository (docs/grafana/atlas-edge.json) returns data
through Prometheus's HTTP API. Prometheus runs with its own config and storage in a
temporary directory, on 127.0.0.1, scraping every second; the test stops it."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.edge.dashboard_network import Watched, cache_hit, watched
from tests.processes import Running

__all__ = ["watched"]

PROMETHEUS = shutil.which("prometheus")
DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana" / "atlas-edge.json"
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="Debian package prometheus missing")


def dashboard_queries() -> list[str]:
    """Every distinct query of the dashboard's panels."""
    doc = json.loads(DASHBOARD.read_text())
    return sorted({t["expr"] for panel in doc["panels"] for t in panel["targets"]})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def prometheus(tmp_path: Path, watched: Watched) -> Iterator[str]:
    """Prometheus scraping the watched edge every second; its API's URL."""
    assert PROMETHEUS is not None
    target = watched.edge.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: atlas-edge\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def query(session: aiohttp.ClientSession, api: str, expr: str) -> list[dict[str, Any]]:
    """The instant vector ``expr`` evaluates to now ([] while Prometheus is starting)."""
    try:
        async with session.get(f"{api}/api/v1/query", params={"query": expr}) as r:
            body = await r.json()
    except aiohttp.ClientConnectionError:
        return []
    assert body["status"] == "success", (expr, body)
    assert body["data"]["resultType"] == "vector", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def test_every_dashboard_query_returns_data(
    watched: Watched, prometheus: str, origin: Running
) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 20
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for _ in range(160):  # the first scrape, within 40 s (Prometheus starts in ~6 s)
            if await query(session, prometheus, 'up{job="atlas-edge"} == 1'):
                break
            await asyncio.sleep(0.25)
        else:
            raise AssertionError("Prometheus did not scrape the edge within 40 s")
        # Traffic while Prometheus watches, so the rates are above zero.
        await cache_hit(watched.edge.url, f"{origin.url}/cached/prometheus")
        await asyncio.sleep(3)  # rates need two scrapes after it
        answers: dict[str, list[dict[str, Any]]] = {}
        for _ in range(40):
            for expr in queries:
                if expr not in answers and (found := await query(session, prometheus, expr)):
                    answers[expr] = found
            if len(answers) == len(queries):
                break
            await asyncio.sleep(0.5)
        missing = [q for q in queries if q not in answers]
        assert not missing, f"no data within 20 s for {missing}"

    def value(expr: str) -> float:
        return float(answers[expr][0]["value"][1])

    paid = int(watched.summary["paid"]) / 10**18
    assert math.isclose(value("atlas_edge_earned_btt_total"), paid, rel_tol=1e-9)
    assert value("atlas_edge_unredeemed_btt") == value("atlas_edge_earned_btt_total")
    assert value("atlas_edge_open_channels") == 1
    assert 0 < value("atlas_edge_stored_bytes / atlas_edge_store_cap_bytes") < 1
    assert 0 < value("atlas_edge_next_settlement_timestamp_seconds - time()") <= 60
    trackers = answers["atlas_edge_tracker_up"]
    assert [(t["metric"]["tracker"], t["value"][1]) for t in trackers] == [
        (watched.tracker.url, "1")
    ]
    assert value("atlas_edge_ledger_up") == 1
    hit_ratio = next(q for q in queries if q.startswith("sum(rate(atlas_edge_fetches_total{cache"))
    assert 0 < value(hit_ratio) < 1
    lanes = {a["metric"]["lane"] for a in answers[next(q for q in queries if "lane_bytes" in q)]}
    assert lanes == {"paid", "free"}
