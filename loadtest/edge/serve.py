"""Part 1, serve: cached chunks from the edge, paid by voucher (each payer a channel of its
own, its vouchers signed ahead), a voucher per chunk or one per run of 16 chunks
(``/v1/run``), or free, against nginx. The edge's CPU per chunk served comes from /proc."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from loadtest.edge.bench import SERVE_CHUNKS, Env
from loadtest.edge.wrk import WrkResult, run_wrk, write_files
from loadtest.harness.blobs import blob_range
from loadtest.harness.children import BenchError, Proc
from loadtest.harness.network import (
    edge_counter,
    edge_fetch,
    edge_payee,
    get_chunk,
    open_payer,
    wait_sealed,
)
from loadtest.harness.nginx import MANY_REQUESTS, start_nginx
from loadtest.harness.procfs import cpu_seconds
from loadtest.harness.rows import CHUNK, GB, Row, make_row, rotated
from requester import LedgerClient
from requester.protocol import PayerChannel, SendVoucher

ACCEPTED = 'atlas_edge_vouchers_total{outcome="accepted"}'
PAID_CHUNKS = 'atlas_edge_chunks_total{paid_by="voucher"}'
RUN = 16
"""Chunks per run in the runs row: the whole served content, one voucher per run."""
NGINX_WORKERS = 1  # one nginx worker process, as the edge is one process (plus helper threads)
WARMUP_MAX_RATE = 12_000.0  # vouchers/s the warm-up run is supplied for (far above the edge's)
SUPPLY_SAFETY = 1.6  # vouchers per measured run = warm-up rate x duration x this, plus a margin
VOUCHER_MARGIN = 200


def sign(channel: PayerChannel, price: int, count: int) -> list[str]:
    """``count`` voucher headers of ``channel``, each one ``price`` above the last."""
    now = int(time.time())
    sends = [channel.pay(price, now)[1] for _ in range(count)]
    headers = [send.voucher.to_header() for send in sends if isinstance(send, SendVoucher)]
    if len(headers) != count:
        raise BenchError("PayerChannel.pay did not return SendVoucher second")
    return headers


class ServeBench:
    """wrk against the edge (a new voucher per request, or free) and against nginx."""

    def __init__(self, env: Env) -> None:
        self.env, self.session = env, env.session
        self.work = env.run.workdir / "serve"
        self.conns = env.run.cfg.connections
        self.pad = self.work / "pad-%d.txt"
        self.cid, self.prefix, self.price, self.runs = "", "", 0, 0
        self.payers: list[PayerChannel] = []
        self.paid: list[WrkResult] = []
        self.accepted: list[int] = []
        """Vouchers the edge counted as accepted during each paid run (its /metrics)."""
        self.free: list[WrkResult] = []
        self.reference: list[WrkResult] = []
        self.in_runs: list[WrkResult] = []
        self.run_chunks: list[int] = []
        """Paid chunks the edge counted during each runs row run (its /metrics)."""
        self.cpu: dict[str, list[float]] = {"voucher": [], "runs": [], "free": [], "nginx": []}
        """CPU seconds per chunk sent, edge (or nginx) process, per measured run."""
        # Free allowance for the free rows; a request with a voucher is always charged to it.
        self.edge = env.run.procs.edge("serve-edge", env.ledger.url, "--free-mib", "10000000")
        self.nginx: Proc | None = None

    async def setup(self) -> None:
        """The content cached at the edge, its chunks as nginx files, price, channels, pads."""
        env, session, edge, salt = self.env, self.session, self.edge, 1
        self.work.mkdir()
        url = f"{env.origin.url}/blob/{SERVE_CHUNKS * CHUNK}?salt={salt}"
        self.cid = (await edge_fetch(session, edge.url, url))["content_id"]
        self.prefix = f"/v1/chunk/{self.cid}/"
        await wait_sealed(session, edge.url, self.cid)
        payee = await edge_payee(session, edge.url)
        ledger = LedgerClient(env.ledger.url, session)
        probe = await open_payer(ledger, payee)
        www = self.work / "nginx" / "www" / "chunk"
        www.mkdir(parents=True)
        for index in range(SERVE_CHUNKS):
            expected = blob_range(index * CHUNK, CHUNK, salt)
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
        pad_lines = sign(probe, self.price, 1000)
        write_files(self.pad, [pad_lines] * self.conns)

    async def _pay_one(self, payer: PayerChannel, index: int, expected: bytes) -> None:
        """Buy chunk ``index`` with a voucher and check it; the first 1-unit voucher is
        refused with 402 and Atlas-Price, which is how the price is learnt."""
        for _ in range(2):
            headers = sign(payer, self.price or 1, 1)
            status, body, answer = await get_chunk(
                self.session, self.edge.url, self.cid, index, {"Atlas-Voucher": headers[0]}
            )
            if status == 402 and not self.price:
                self.price = int(answer["Atlas-Price"])
                continue
            if status != 200 or answer.get("Atlas-Paid-By") != "voucher" or body != expected:
                raise BenchError(f"paid chunk {index}: {status} {answer.get('Atlas-Paid-By')}")
            return
        raise BenchError(f"chunk {index}: the edge refused a voucher of its own price")

    async def run_padded(self, nginx: bool, seconds: int) -> None:
        """wrk against nginx's chunk files (``reference``) or the free edge (``free``), every
        request with the next line of the pads (they cycle, a voucher supply does not)."""
        target = self.nginx if nginx else self.edge
        assert target is not None
        prefix, header = ("/chunk/", "Atlas-Voucher") if nginx else (self.prefix, "X-Bench-Pad")
        cpu = cpu_seconds(target.pid)
        result = await run_wrk(target.url, prefix, self.pad, header, True, self.conns, seconds)
        self._cpu("nginx" if nginx else "free", target.pid, cpu, result.requests)
        (self.reference if nginx else self.free).append(result)

    def _cpu(self, kind: str, pid: int, before: float, chunks: int) -> None:
        self.cpu[kind].append((cpu_seconds(pid) - before) / max(chunks, 1))

    def _cpu_us(self) -> dict[str, float]:
        """Median CPU µs per chunk sent, by kind of run."""
        return {k: round(statistics.median(v) * 1e6, 1) for k, v in self.cpu.items() if v}

    async def run_paid(self, seconds: int, supply: int, run: int = 0) -> WrkResult:
        """A run where every request carries the next voucher of its connection's channel,
        signed ahead, ``supply`` per connection; a run that used them all is repeated with
        twice as many (later vouchers are always above earlier ones). ``run``: each request
        asks ``/v1/run`` for that many chunks (the whole content) and its voucher pays them
        all; 0: ``/v1/chunk``, a voucher per chunk."""
        price, per = (self.price * run, run) if run else (self.price, 1)
        prefix, chunks = (f"/v1/run/{self.cid}/", 1) if run else (self.prefix, SERVE_CHUNKS)
        for _ in range(3):
            self.runs += 1
            pattern = self.work / f"vouchers-{self.runs}-%d.txt"
            files = write_files(pattern, [sign(p, price, supply) for p in self.payers])
            before = edge_counter(self.edge.url, ACCEPTED)
            sent_before, cpu = edge_counter(self.edge.url, PAID_CHUNKS), cpu_seconds(self.edge.pid)
            suffix = f"?count={run}" if run else ""
            result = await run_wrk(self.edge.url, prefix, pattern, "Atlas-Voucher", False,
                                   self.conns, seconds, chunks, suffix)  # fmt: skip
            self._cpu("runs" if run else "voucher", self.edge.pid, cpu, result.requests * per)
            accepted = int(edge_counter(self.edge.url, ACCEPTED) - before)
            sent = int(edge_counter(self.edge.url, PAID_CHUNKS) - sent_before)
            for path in files:
                path.unlink()
            if not result.exhausted:
                (self.in_runs if run else self.paid).append(result)
                (self.run_chunks if run else self.accepted).append(sent if run else accepted)
                return result
            self.env.run.notes.append(
                f"serve: run {self.runs} ran out of vouchers ({supply} per connection); "
                "repeated with twice as many"
            )
            supply *= 2
        raise BenchError("the edge outran every voucher supply")

    def rows(self) -> list[Row]:
        cfg, paid, run = self.env.run.cfg, self.paid, self.env.run
        non_2xx, completed = sum(r.status_errors for r in paid), sum(r.requests for r in paid)
        accepted, sent = sum(self.accepted), sum(r.sent for r in paid)
        ref = self.reference
        results = {"voucher": paid, "free": self.free, "nginx": ref}
        latency = ", ".join(
            f"{name} {statistics.median(r.latency_p50_us for r in done) / 1000:.2f}/"
            f"{statistics.median(r.latency_p99_us for r in done) / 1000:.2f}"
            for name, done in results.items()
        )
        run.notes += [
            f"serve: wrk, {self.conns} threads x 1 connection (one channel each), "
            f"{cfg.serve_seconds} s runs, {SERVE_CHUNKS} distinct 256 KiB chunks cycled; "
            f"price {self.price} base units per chunk; nginx: {NGINX_WORKERS} worker, sendfile "
            "on, access log off",
            f"serve (voucher): {completed} responses counted by wrk, {non_2xx} non-2xx, "
            f"{sum(r.socket_errors for r in paid)} socket errors/timeouts; the edge accepted "
            f"{accepted} vouchers ({sent} sent, the rest in flight when wrk stopped)",
            f"serve: latency p50/p99 ms: {latency}",
            f"serve (runs of {RUN}): {sum(r.requests for r in self.in_runs)} runs counted by "
            f"wrk, {sum(r.status_errors for r in self.in_runs)} non-2xx; the edge sent "
            f"{sum(self.run_chunks)} paid chunks",
            "serve: CPU per 256 KiB chunk sent (median, /proc, server process only): "
            + ", ".join(f"{k} {us:.0f} µs" for k, us in self._cpu_us().items()),
        ]
        run.checks["serve"] = {"voucher_responses": completed, "voucher_non_2xx": non_2xx,
                               "vouchers_accepted": accepted, "vouchers_sent": sent,
                               "nginx_errors": sum(r.errors for r in self.reference),
                               "free_non_2xx": sum(r.status_errors for r in self.free),
                               "run_responses": sum(r.requests for r in self.in_runs),
                               "run_non_2xx": sum(r.status_errors for r in self.in_runs),
                               "run_chunks": sum(self.run_chunks),
                               "cpu_us_per_chunk": self._cpu_us()}  # fmt: skip
        if non_2xx or accepted < completed:
            run.notes.append("serve: WARNING: not every counted request was accepted")
        if any(r.errors for r in self.reference):
            raise BenchError(f"the nginx reference had errors: {self.reference}")
        reference, nginx = "nginx, same chunk files, same wrk script", [r.rate for r in ref]
        run_errors = sum(r.status_errors for r in self.in_runs)
        return [
            make_row("serve_run_bytes", f"cached 256 KiB chunks in runs of {RUN}, one voucher "
                     "per run", "GB/s", [r.rate * RUN * CHUNK / GB for r in self.in_runs],
                     "nginx, same chunk files (256 KiB requests), same wrk script",
                     [r.rate * CHUNK / GB for r in ref], "ratio >= 0.70",
                     lambda _m, ratio: ratio >= 0.70 and run_errors == 0),
            make_row("serve_voucher_rps", "cached 256 KiB chunk, new voucher checked per request",
                     "req/s", [r.rate for r in paid], reference, nginx),
            make_row("serve_free_rps", "cached 256 KiB chunk, free (no voucher)", "req/s",
                     [r.rate for r in self.free], reference, nginx),
        ]  # fmt: skip


async def bench_serve(env: Env) -> list[Row]:
    cfg, bench = env.run.cfg, ServeBench(env)
    try:
        await bench.setup()
        # Warm-up; it also makes the edge read every channel from the ledger once.
        await bench.run_padded(True, cfg.warmup_seconds)
        await bench.run_padded(False, cfg.warmup_seconds)
        warm_supply = math.ceil(WARMUP_MAX_RATE * cfg.warmup_seconds / bench.conns)
        warm = await bench.run_paid(cfg.warmup_seconds, warm_supply)
        warm_runs = await bench.run_paid(cfg.warmup_seconds, warm_supply, RUN)
        for results in (bench.reference, bench.free, bench.paid, bench.in_runs):
            results.clear()
        for counts in (bench.accepted, bench.run_chunks):
            counts.clear()
        for cpu in bench.cpu.values():
            cpu.clear()
        rate = warm.rate * SUPPLY_SAFETY
        supply = math.ceil(rate * cfg.serve_seconds / bench.conns) + VOUCHER_MARGIN
        run_rate = warm_runs.rate * SUPPLY_SAFETY
        run_supply = math.ceil(run_rate * cfg.serve_seconds / bench.conns) + VOUCHER_MARGIN
        probes: list[Callable[[], Awaitable[Any]]] = [
            lambda: bench.run_padded(True, cfg.serve_seconds),
            lambda: bench.run_paid(cfg.serve_seconds, supply),
            lambda: bench.run_paid(cfg.serve_seconds, run_supply, RUN),
            lambda: bench.run_padded(False, cfg.serve_seconds),
        ]
        for _, probe in rotated(cfg.reps, probes):
            await probe()
    finally:
        for proc in (bench.nginx, bench.edge):
            if proc is not None:
                env.run.procs.stop(proc)
    return bench.rows()
