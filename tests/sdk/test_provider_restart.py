"""A provider that restarts mid-download is asked again, not dropped for good.

An edge changes its reserve (or its version) by a restart: for a second or two its port
refuses connections. That proves nothing against it, so the download backs off and asks
it again (requester/provider_backoff.py); before, one refused connection dropped it for
the rest of the download, and a download from it alone failed with 504 no_providers.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from loadtest.harness.network import wait_sealed
from requester.client import AtlasClient
from requester.provider_backoff import MAX_DELAY, ProviderBackoff
from tests.origin_server import pattern
from tests.processes import Running, start

CHUNK = 256 * 1024
SIZE = 40 * CHUNK
"""10 MiB: 5 s through a 2 MiB/s free lane, so the restart falls mid-download."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_market_edge(data_dir: Path, port: int, ledger: str) -> Running:
    return start(["edge", "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir",
                  str(data_dir), "--ledger", ledger, "--allow-private-origins",
                  "--upload-capacity", "2MiB/s", "--slots", "2", "--free-slots", "1",
                  "--round-seconds", "1"])  # fmt: skip


async def test_a_download_from_one_edge_survives_its_restart(
    ledger: Running, origin: Running, tmp_path: Path
) -> None:
    port = free_port()
    edge = start_market_edge(tmp_path / "edge", port, ledger.url)
    parts: list[bytes] = []
    try:
        async with aiohttp.ClientSession() as session:
            got = await AtlasClient([edge.url], session, None).open(
                f"{origin.url}/bytes/{SIZE}?t=restart"
            )
            async for chunk in got.chunks():
                parts.append(chunk)
                if len(parts) == 4:  # it has served us: now it restarts on the same port
                    # once it holds the whole content (a fetch cut by the stop is not kept)
                    await wait_sealed(session, edge.url, got.head.content_id.hex())
                    edge.stop()
                    edge = await asyncio.to_thread(
                        start_market_edge, tmp_path / "edge", port, ledger.url
                    )
    finally:
        edge.stop()
    assert b"".join(parts) == pattern(0, SIZE)
    [stats] = got.progress.providers.values()
    assert stats.dropped is None and stats.chunks == SIZE // CHUNK


def test_backoff_doubles_to_a_cap_and_gives_up_after_its_time_or_attempts() -> None:
    backoff = ProviderBackoff(give_up_after=30.0, max_attempts=20)
    waits = []
    for attempt in range(8):
        assert backoff.failed("a", float(attempt), "unreachable: refused")
        waits.append(backoff.wait("a", float(attempt)))
    assert waits[:3] == pytest.approx([0.1, 0.2, 0.4]) and max(waits) == MAX_DELAY
    assert not backoff.failed("a", 30.0, "unreachable: refused")  # 30 s since the first
    assert backoff.describe("a", 30.0) == "unreachable: refused (9 attempts over 30.0 s)"
    assert backoff.wait("b", 0.0) == 0.0 and backoff.failing() == ["a"]
    backoff.succeeded("a")
    assert backoff.wait("a", 30.0) == 0.0 and backoff.failing() == []
    few = ProviderBackoff(give_up_after=30.0, max_attempts=3)
    assert [few.failed("c", 0.0, "reset") for _ in range(3)] == [True, True, False]
