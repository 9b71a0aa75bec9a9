"""Is what the edge depends on answering? The ledger (it checks channels and redeems
there) and its trackers (they list it to requesters), probed every :data:`PROBE_SECONDS`
(or every history sample when ``--history-interval`` is shorter).

A probe that fails says why in a few words; the dashboard shows it and ``/metrics``
reports ``atlas_edge_ledger_up`` and ``atlas_edge_tracker_up{tracker}``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp

from requester.ledger_api import Ledger

PROBE_SECONDS = 15.0
PROBE_TIMEOUT = 5.0


@dataclass
class Probe:
    """The last answer of one dependency (``up`` None: not probed yet)."""

    up: bool | None = None
    checked_at: float = 0.0
    latency: float = 0.0
    detail: str = ""


@dataclass
class Health:
    ledger: Probe = field(default_factory=Probe)
    trackers: dict[str, Probe] = field(default_factory=dict)

    @classmethod
    def of(cls, trackers: tuple[str, ...]) -> Health:
        return cls(trackers={url: Probe() for url in trackers})

    async def probe(self, ledger: Ledger, session: aiohttp.ClientSession) -> None:
        """Probe the ledger and every tracker at once; each probe records its own answer."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._probe_ledger(ledger))
            for url in self.trackers:
                tasks.create_task(self._probe_tracker(url, session))

    async def run(self, ledger: Ledger, every: float = PROBE_SECONDS) -> None:
        """Probe now and then every ``every`` seconds, until cancelled."""
        timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                await self.probe(ledger, session)
                await asyncio.sleep(every)

    async def _probe_ledger(self, ledger: Ledger) -> None:
        start = time.monotonic()
        try:
            await asyncio.wait_for(ledger.info(), PROBE_TIMEOUT)
        except Exception as exc:  # any failure is the answer: the ledger is not usable
            self.ledger = _failed(start, exc)
        else:
            self.ledger = _answered(start)

    async def _probe_tracker(self, url: str, session: aiohttp.ClientSession) -> None:
        start = time.monotonic()
        try:
            async with session.get(f"{url.rstrip('/')}/healthz") as r:
                ok = r.status == 200
        except Exception as exc:
            self.trackers[url] = _failed(start, exc)
        else:
            self.trackers[url] = _answered(start) if ok else Probe(
                False, time.time(), time.monotonic() - start, f"HTTP {r.status}"
            )  # fmt: skip


def _answered(start: float) -> Probe:
    return Probe(True, time.time(), time.monotonic() - start)


def _failed(start: float, exc: BaseException) -> Probe:
    detail = str(exc) or type(exc).__name__
    return Probe(False, time.time(), time.monotonic() - start, detail[:200])
