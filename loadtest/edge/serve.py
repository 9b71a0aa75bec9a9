"""Part 1, serve: cached chunks from the edge, paid by voucher or free, against nginx."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.edge.config import (
    NGINX_WORKERS,
    SERVE_CHUNKS,
    SUPPLY_SAFETY,
    VOUCHER_MARGIN,
    WARMUP_MAX_RATE,
    Env,
)
from loadtest.edge.vouchers import Payer, open_payer
from loadtest.edge.wrk import WrkResult, remove_lines, run_wrk, thread_file, write_lines
from loadtest.harness.blobs import blob_range
from loadtest.harness.children import BenchError, Proc
from loadtest.harness.edge_api import edge_counter, edge_fetch, get_chunk, wait_sealed
from loadtest.harness.machine import tool_version
from loadtest.harness.nginx import MANY_REQUESTS, start_nginx
from loadtest.harness.rows import CHUNK, Row, make_row
from requester.ledger_client import LedgerClient

ACCEPTED = 'atlas_edge_vouchers_total{outcome="accepted"}'


@dataclass
class PaidRun:
    result: WrkResult
    accepted: int
    """Vouchers the edge counted as accepted during the run (its /metrics)."""


class ServeBench:
    """wrk against the edge (a new voucher per request, or free) and against nginx."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.work = env.run.workdir / "serve"
        self.conns = env.run.cfg.connections
        self.salt = 1
        self.edge: Proc | None = None
        self.nginx: Proc | None = None
        self.cid = ""
        self.price = 0
        self.payers: list[Payer] = []
        self.pad = self.work / "pad-%d.txt"
        self.runs = 0
        self.paid: list[PaidRun] = []
        self.free: list[WrkResult] = []
        self.reference: list[WrkResult] = []

    async def setup(self) -> None:
        """Edge with the content cached, its chunks as nginx files, price, channels, pads."""
        env, session = self.env, self.env.session
        self.work.mkdir()
        # Free allowance for the free rows; a request with a voucher is always charged to it.
        edge = env.run.procs.edge("serve-edge", env.ledger.url, "--free-mib", "10000000")
        self.edge = edge
        url = f"{env.origin.url}/blob/{SERVE_CHUNKS * CHUNK}?salt={self.salt}"
        self.cid = (await edge_fetch(session, edge.url, url))["content_id"]
        await wait_sealed(session, edge.url, self.cid)
        async with session.get(f"{edge.url}/v1/info") as response:
            payee = (await response.json())["payee"]
        ledger = LedgerClient(env.ledger.url, session)
        probe = await open_payer(ledger, payee)
        www = self.work / "nginx" / "www" / "chunk"
        www.mkdir(parents=True)
        for index in range(SERVE_CHUNKS):
            expected = blob_range(index * CHUNK, CHUNK, self.salt)
            (www / str(index)).write_bytes(expected)
            await self._pay_one(probe, index, expected)
        self.nginx = nginx = start_nginx(
            env.run.procs, self.work / "nginx", workers=NGINX_WORKERS, http_extra=MANY_REQUESTS
        )
        for index in (0, SERVE_CHUNKS - 1):
            async with session.get(f"{nginx.url}/chunk/{index}") as response:
                body = await response.read()
            if response.status != 200 or body != (www / str(index)).read_bytes():
                raise BenchError(f"nginx /chunk/{index}: {response.status}, {len(body)} bytes")
        self.payers = [await open_payer(ledger, payee) for _ in range(self.conns)]
        # Requests to nginx and to the free edge carry a header of the same size, unchecked.
        pad_lines = (await env.signer.sign([probe], self.price, 1000))[0]
        for thread in range(1, self.conns + 1):
            write_lines(thread_file(self.pad, thread), pad_lines)

    async def _pay_one(self, payer: Payer, index: int, expected: bytes) -> None:
        """Buy chunk ``index`` with a voucher and check it; the first 1-unit voucher is
        refused with 402 and Atlas-Price, which is how the price is learnt."""
        assert self.edge is not None
        for _ in range(2):
            headers = (await self.env.signer.sign([payer], self.price or 1, 1))[0]
            status, body, answer = await get_chunk(
                self.env.session, self.edge.url, self.cid, index, {"Atlas-Voucher": headers[0]}
            )
            if status == 402 and not self.price:
                self.price = int(answer["Atlas-Price"])
                continue
            if status != 200 or answer.get("Atlas-Paid-By") != "voucher" or body != expected:
                raise BenchError(f"paid chunk {index}: {status} {answer.get('Atlas-Paid-By')}")
            return
        raise BenchError(f"chunk {index}: the edge refused a voucher of its own price")

    async def _wrk(self, target: Proc, pattern: Path, header: str, seconds: int) -> WrkResult:
        """wrk against nginx's chunk files or the edge's chunks; every request carries the
        next line of ``pattern`` (the pads cycle, a voucher supply does not)."""
        prefix = "/chunk/" if target is self.nginx else f"/v1/chunk/{self.cid}/"
        cycle = pattern == self.pad
        return await run_wrk(target.url, prefix, pattern, header, cycle, self.conns, seconds)

    async def run_nginx(self, seconds: int) -> None:
        assert self.nginx is not None
        self.reference.append(await self._wrk(self.nginx, self.pad, "Atlas-Voucher", seconds))

    async def run_free(self, seconds: int) -> None:
        assert self.edge is not None
        self.free.append(await self._wrk(self.edge, self.pad, "X-Bench-Pad", seconds))

    async def run_paid(self, seconds: int, supply: int) -> WrkResult:
        """A run where every request carries the next voucher of its connection's channel.

        Vouchers are signed ahead, ``supply`` per connection; a run that used them all is
        repeated with twice as many (later vouchers are always above earlier ones)."""
        assert self.edge is not None
        session, edge = self.env.session, self.edge
        for _ in range(3):
            self.runs += 1
            pattern = self.work / f"vouchers-{self.runs}-%d.txt"
            for thread, lines in enumerate(
                await self.env.signer.sign(self.payers, self.price, supply), 1
            ):
                write_lines(thread_file(pattern, thread), lines)
            before = await edge_counter(session, edge.url, ACCEPTED)
            result = await self._wrk(edge, pattern, "Atlas-Voucher", seconds)
            accepted = int(await edge_counter(session, edge.url, ACCEPTED) - before)
            remove_lines(pattern, self.conns)
            if not result.exhausted:
                self.paid.append(PaidRun(result, accepted))
                return result
            self.env.run.notes.append(
                f"serve: run {self.runs} ran out of vouchers ({supply} per connection); "
                "repeated with twice as many"
            )
            supply *= 2
        raise BenchError("the edge outran every voucher supply")

    def stop(self) -> None:
        for proc in (self.nginx, self.edge):
            if proc is not None:
                self.env.run.procs.stop(proc)

    def rows(self) -> list[Row]:
        cfg, paid = self.env.run.cfg, [run.result for run in self.paid]
        non_2xx = sum(r.status_errors for r in paid)
        socket_errors = sum(r.errors - r.status_errors for r in paid)
        completed = sum(r.requests for r in paid)
        accepted = sum(run.accepted for run in self.paid)
        latency = ", ".join(
            f"{name} {statistics.median(r.latency_p50_us for r in results) / 1000:.2f}/"
            f"{statistics.median(r.latency_p99_us for r in results) / 1000:.2f}"
            for name, results in (("voucher", paid), ("free", self.free), ("nginx", self.reference))
        )
        self.env.run.notes += [
            f"serve: wrk, {self.conns} threads x 1 connection (one channel each), "
            f"{cfg.serve_seconds} s runs, {SERVE_CHUNKS} distinct 256 KiB chunks cycled; "
            f"price {self.price} base units per chunk",
            f"serve: reference {tool_version(['nginx', '-v'])}, {NGINX_WORKERS} worker, "
            "sendfile on, access log off",
            f"serve (voucher): {completed} responses counted by wrk, {non_2xx} non-2xx, "
            f"{socket_errors} socket errors/timeouts; the edge accepted {accepted} vouchers "
            f"({sum(r.sent for r in paid)} sent, the rest in flight when wrk stopped)",
            f"serve: non-2xx nginx {sum(r.status_errors for r in self.reference)}, "
            f"free edge {sum(r.status_errors for r in self.free)}",
            f"serve: latency p50/p99 ms: {latency}",
        ]
        self.env.run.checks["serve"] = {
            "voucher_responses": completed,
            "voucher_non_2xx": non_2xx,
            "voucher_socket_errors": socket_errors,
            "vouchers_accepted": accepted,
            "vouchers_sent": sum(r.sent for r in paid),
            "nginx_errors": sum(r.errors for r in self.reference),
            "free_errors": sum(r.errors for r in self.free),
            "price": self.price,
        }
        if non_2xx or accepted < completed:
            self.env.run.notes.append("serve: WARNING: not every counted request was accepted")
        if any(r.errors for r in self.reference):
            raise BenchError(f"the nginx reference had errors: {self.reference}")
        reference = "nginx, same chunk files, same wrk script"
        nginx = [r.rate for r in self.reference]
        return [
            make_row(
                "serve_voucher_rps",
                "cached 256 KiB chunk, new voucher checked per request",
                "req/s",
                [r.rate for r in paid],
                reference,
                nginx,
                "ratio >= 0.70",
                lambda _m, ratio: ratio >= 0.70 and non_2xx == 0,
            ),
            make_row(
                "serve_free_rps",
                "cached 256 KiB chunk, free (no voucher)",
                "req/s",
                [r.rate for r in self.free],
                reference,
                nginx,
            ),
        ]


async def bench_serve(env: Env) -> list[Row]:
    cfg, bench = env.run.cfg, ServeBench(env)
    try:
        await bench.setup()
        # Warm-up; it also makes the edge read every channel from the ledger once.
        await bench.run_nginx(cfg.warmup_seconds)
        await bench.run_free(cfg.warmup_seconds)
        warm_supply = math.ceil(WARMUP_MAX_RATE * cfg.warmup_seconds / bench.conns)
        warm = await bench.run_paid(cfg.warmup_seconds, warm_supply)
        bench.reference.clear()
        bench.free.clear()
        bench.paid.clear()
        rate = warm.rate * SUPPLY_SAFETY
        supply = math.ceil(rate * cfg.serve_seconds / bench.conns) + VOUCHER_MARGIN
        probes: list[Callable[[], Any]] = [
            lambda: bench.run_nginx(cfg.serve_seconds),
            lambda: bench.run_paid(cfg.serve_seconds, supply),
            lambda: bench.run_free(cfg.serve_seconds),
        ]
        for rep in range(cfg.reps):
            shift = rep % len(probes)
            for probe in [*probes[shift:], *probes[:shift]]:
                await probe()
    finally:
        bench.stop()
    return bench.rows()
