"""End-to-end benchmark of one edge node (``cdn_edge``), run by ``make bench``.

Real processes on 127.0.0.1 (a ledger with faucet, an origin, edges, nginx,
wrk), all children of this one, each measured against a reference taken in the
same run:

1. **serve**: cached 256 KiB chunks, every request carrying a new cumulative
   voucher that the edge checks, persists and accepts, in requests/s with
   ``wrk``; reference: nginx serving the same chunk bytes as files to the same
   wrk and the same Lua script. Each wrk thread has exactly one connection and
   one channel, so its vouchers reach the edge in order. The edge serving the
   same chunks free (no voucher) is measured too, to split the cost.
2. **stream**: peak RSS growth of the edge process (``/proc/PID/status``
   VmHWM and sampled VmRSS) while a 1 GiB response streams from the origin
   through a free edge to a client; and that client's throughput against the
   same client downloading directly from the origin.
3. **pages**: bytes on the wire for the HTML/CSS/JS files shipped in the
   virtualenv's packages, fetched chunk by chunk with and without
   ``Accept-Encoding: zstd``; the zstd cost (at the edge's level) per MiB
   against SHA-256 of the same chunks, and the client-side time per MiB.

Medians of several repetitions; ``ratio`` = median / reference median. Usage::

    .venv/bin/python loadtest/bench_edge.py [--quick] [--reps N] [--json PATH] [--install-deps]

Needs ``wrk`` and ``nginx`` (Debian packages of those names); ``--install-deps``
installs them with apt-get when missing.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import ctypes
import gzip
import hashlib
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import zstandard
from bench_protocol import machine_facts, version_of

from cdn_edge import wire_encoding
from requester.ledger_client import LedgerClient
from requester.protocol import (
    BTT_LOCAL,
    ChannelTerms,
    PayerChannel,
    PayerKey,
    PaymentDomain,
    SendVoucher,
    TronAddress,
)

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
GB = 1e9
CHUNK = 256 * KIB
PIECE = 64 * KIB
"""Origin write size (what a socket read hands over)."""
BLOB_BUFFER = 4 * MIB
BLOB_SEED = 0x41544C53
NGINX_WORKERS = 1
"""One nginx worker process, as the edge is one process (plus helper threads)."""
SERVE_CHUNKS = 16
"""Distinct chunks of the served content (4 MiB), cycled through by every connection."""
STREAM_WORKERS = 2
"""Chunk requests in flight while streaming, as requester/downloader.py's per_provider default."""
FAUCET_GRANT = 1000 * BTT_LOCAL.one
DEPOSIT = 900 * BTT_LOCAL.one
CHANNEL_LIFETIME = 3 * 3600
WARMUP_MAX_RATE = 12_000.0
"""Vouchers per second the edge warm-up run is supplied for (far above what it serves)."""
SUPPLY_SAFETY = 1.6
"""Vouchers signed per measured run = warm-up rate x duration x this, plus a margin."""
VOUCHER_MARGIN = 200
READY_TIMEOUT = 30.0
RSS_POLL = 0.01
ATLAS = str(Path(sys.executable).with_name("atlas"))
ZSTD_LEVEL = wire_encoding.LEVEL
PAGE_SUFFIXES = {".html": "html", ".htm": "html", ".css": "css", ".js": "js", ".mjs": "js"}
PAGE_TYPES = {
    "html": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "application/javascript; charset=utf-8",
}
PARTS = ("serve", "stream", "pages")
PAGE_MIN_SIZE = 1 * KIB
PAGE_MAX_TOTAL = 16 * MIB


@dataclass(frozen=True, slots=True)
class Config:
    mode: str
    reps: int
    serve_seconds: int
    """Length of one measured wrk run."""
    warmup_seconds: int
    connections: int
    """wrk threads = connections = channels (one of each per thread)."""
    stream_bytes: int
    stream_reps: int
    page_reps: int


FULL = Config("full", 5, 4, 2, 8, GIB, 3, 5)
QUICK = Config("quick", 1, 1, 1, 2, 32 * MIB, 1, 1)


class BenchError(Exception):
    """A measurement could not be made (a server misbehaved, a check failed)."""


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    operation: str
    unit: str
    median: float
    reference: str
    reference_median: float
    ratio: float
    """median / reference median (for rates above 1 is faster, for costs above 1 is dearer)."""
    goal: str
    met: bool | None
    samples: list[float]
    reference_samples: list[float]


def make_row(
    id_: str,
    operation: str,
    unit: str,
    samples: Sequence[float],
    reference: str,
    reference_samples: Sequence[float],
    goal: str = "",
    check: Callable[[float, float], bool] | None = None,
) -> Row:
    median = statistics.median(samples)
    reference_median = statistics.median(reference_samples)
    ratio = median / reference_median if reference_median else math.inf
    met = check(median, ratio) if check is not None else None
    return Row(
        id_,
        operation,
        unit,
        median,
        reference,
        reference_median,
        ratio,
        goal,
        met,
        list(samples),
        list(reference_samples),
    )


# --- deterministic content ------------------------------------------------------------------

_BUFFER: bytes | None = None


def blob_buffer() -> bytes:
    global _BUFFER  # noqa: PLW0603 (built once, on first use, in whichever process needs it)
    if _BUFFER is None:
        _BUFFER = random.Random(BLOB_SEED).randbytes(BLOB_BUFFER)
    return _BUFFER


def blob_range(offset: int, size: int, salt: int) -> bytes:
    """Bytes ``offset .. offset+size`` of blob ``salt``: a repeated random buffer whose every
    256 KiB chunk starts with its index and the salt, so no two chunks are alike (the chunk
    store deduplicates by hash) and a client can check order and origin for free."""
    buffer = blob_buffer()
    out = bytearray()
    start = offset % BLOB_BUFFER
    while len(out) < size:
        take = min(size - len(out), BLOB_BUFFER - start)
        out += buffer[start : start + take]
        start = 0
    first = -(-offset // CHUNK) * CHUNK
    for boundary in range(first, offset + size, CHUNK):
        stamp = (boundary // CHUNK).to_bytes(8, "big") + salt.to_bytes(8, "big")
        at = boundary - offset
        out[at : at + 16] = stamp[: max(0, min(16, size - at))]
    return bytes(out)


def check_chunk(body: bytes, index: int, salt: int, expected_size: int) -> None:
    stamp = index.to_bytes(8, "big") + salt.to_bytes(8, "big")
    if len(body) != expected_size or body[:16] != stamp[: min(16, expected_size)]:
        raise BenchError(f"chunk {index} of blob {salt}: wrong size or bytes ({len(body)} B)")


# --- the origin (this file run with --origin) -----------------------------------------------


def run_origin(port: int, pages: Path | None) -> None:
    """A loopback origin: ``/blob/{n}?salt=S`` (streamed) and ``/pages/{name}`` (files)."""
    from aiohttp import web

    async def blob(request: web.Request) -> web.StreamResponse:
        total = int(request.match_info["n"])
        salt = int(request.query.get("salt", "0"))
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = total
        await response.prepare(request)
        sent = 0
        while sent < total:
            size = min(PIECE, total - sent)
            await response.write(blob_range(sent, size, salt))
            sent += size
        await response.write_eof()
        return response

    async def page(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if pages is None or "/" in name or name.startswith("."):
            raise web.HTTPNotFound()
        path = pages / name
        if not path.is_file():
            raise web.HTTPNotFound()
        kind = PAGE_SUFFIXES.get(path.suffix, "")
        return web.Response(
            body=path.read_bytes(),
            headers={"Content-Type": PAGE_TYPES.get(kind, "application/octet-stream")},
        )

    async def main() -> None:
        app = web.Application()
        app.add_routes([web.get("/blob/{n:[0-9]+}", blob), web.get("/pages/{name}", page)])
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=75.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        host, bound = runner.addresses[0][:2]
        sys.stdout.write(json.dumps({"listening": f"http://{host}:{bound}"}) + "\n")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())


# --- processes ------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if this benchmark dies (PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


@dataclass
class Proc:
    """A child process this benchmark started; stopped by its PID, never by name."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        return self.popen.returncode

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Processes:
    """Every server of the run; ``close`` stops them all (in reverse order), by PID."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: list[Proc] = []
        self.bad_exits: list[str] = []

    def start(self, name: str, argv: Sequence[str], *, ready_line: bool = True) -> Proc:
        out = self.workdir / f"{name}.out"
        log = self.workdir / f"{name}.log"
        with out.open("wb") as stdout, log.open("wb") as stderr:
            popen = subprocess.Popen(
                list(argv),
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (it only calls prctl)
            )
        proc = Proc(name, popen, log)
        self.running.append(proc)
        if ready_line:
            proc.url = self._wait_ready(proc, out)
        return proc

    def _wait_ready(self, proc: Proc, out: Path) -> str:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            for line in out.read_text(encoding="utf-8", errors="replace").splitlines():
                with contextlib.suppress(ValueError, AttributeError):
                    url = json.loads(line).get("listening")
                    if url:
                        return str(url)
            if proc.popen.poll() is not None:
                break
            time.sleep(0.05)
        self.stop(proc)
        raise BenchError(f"{proc.name} did not become ready:\n{proc.log_tail()}")

    def stop(self, proc: Proc) -> int | None:
        code = proc.stop()
        if proc in self.running:
            self.running.remove(proc)
            if code not in (0, -signal.SIGTERM):
                self.bad_exits.append(f"{proc.name} exited {code}: {proc.log_tail(5)}")
        return code

    def close(self) -> None:
        for proc in reversed(list(self.running)):
            self.stop(proc)

    def ledger(self) -> Proc:
        data = self.workdir / "ledger"
        return self.start(
            "ledger",
            [
                ATLAS,
                "ledger",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
                str(data),
                "--faucet",
            ],
        )

    def origin(self, pages: Path) -> Proc:
        script = str(Path(__file__).resolve())
        return self.start("origin", [sys.executable, script, "--origin", "--pages", str(pages)])

    def edge(self, name: str, ledger: str, *extra: str) -> Proc:
        data = self.workdir / name
        return self.start(
            name,
            [
                ATLAS,
                "edge",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
                str(data),
                "--ledger",
                ledger,
                "--allow-private-origins",
                *extra,
            ],
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


NGINX_CONF = """\
worker_processes {workers};
daemon off;
master_process on;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
    default_type application/octet-stream;
    types {{ }}
    client_body_temp_path {root}/tmp-body;
    proxy_temp_path {root}/tmp-proxy;
    fastcgi_temp_path {root}/tmp-fastcgi;
    uwsgi_temp_path {root}/tmp-uwsgi;
    scgi_temp_path {root}/tmp-scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
        location / {{ }}
    }}
}}
"""


def start_nginx(procs: Processes, root: Path, workers: int) -> Proc:
    """nginx on a free loopback port serving ``root/www``; a child of this process."""
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, root=root, port=port), encoding="utf-8")
    for path in [root, *root.rglob("*")]:  # workers run as an unprivileged user under root
        path.chmod(0o755 if path.is_dir() else 0o644)
    nginx = shutil.which("nginx") or "nginx"
    proc = procs.start(
        "nginx",
        [nginx, "-e", str(root / "nginx-error.log"), "-p", str(root), "-c", str(conf)],
        ready_line=False,
    )
    proc.url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return proc
        time.sleep(0.05)
    procs.stop(proc)
    error_log = (root / "nginx-error.log").read_text(encoding="utf-8", errors="replace")
    raise BenchError(f"nginx did not start:\n{proc.log_tail()}\n{error_log[-2000:]}")


# --- memory of a process --------------------------------------------------------------------


def proc_status_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {field_name}")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs 5); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


class RssSampler:
    """Polls VmRSS of ``pid`` in a thread and keeps the largest value (KiB)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, BenchError):
                self.peak = max(self.peak, proc_status_kib(self.pid, "VmRSS"))
            self._stop.wait(RSS_POLL)


# --- edge client helpers --------------------------------------------------------------------


async def edge_fetch(session: aiohttp.ClientSession, edge: str, url: str) -> dict[str, Any]:
    async with session.post(f"{edge}/v1/fetch", json={"url": url}) as response:
        info: dict[str, Any] = await response.json()
        if response.status != 200:
            raise BenchError(f"fetch {url} via {edge}: {response.status} {info}")
    return info


async def wait_sealed(
    session: aiohttp.ClientSession, edge: str, cid: str, limit: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        async with session.get(f"{edge}/v1/content/{cid}") as response:
            info: dict[str, Any] = await response.json()
        if info.get("error"):
            raise BenchError(f"content {cid} failed at the edge: {info['error']}")
        if info.get("seal"):
            return info
        await asyncio.sleep(0.05)
    raise BenchError(f"content {cid} was not sealed within {limit} s")


async def get_chunk(
    session: aiohttp.ClientSession,
    edge: str,
    cid: str,
    index: int,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, Any]:
    async with session.get(
        f"{edge}/v1/chunk/{cid}/{index}", headers=headers or {}, auto_decompress=False
    ) as response:
        return response.status, await response.read(), response.headers


async def edge_counter(session: aiohttp.ClientSession, edge: str, metric: str) -> float:
    """One sample of the edge's Prometheus text, e.g. ``atlas_edge_vouchers_total{...}``."""
    async with session.get(f"{edge}/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith(metric + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- vouchers -------------------------------------------------------------------------------


@dataclass
class Payer:
    """One payer and its channel to the edge; ``issued`` is the highest amount signed so far."""

    secret: bytes
    chain_id: int
    contract: bytes
    channel_id: bytes
    payee: str
    deposit: int
    expires_at: int
    issued: int = 0

    def channel(self) -> PayerChannel:
        key = PayerKey(self.secret)
        terms = ChannelTerms(
            PaymentDomain(self.chain_id, self.contract),
            self.channel_id,
            key.address,
            TronAddress.parse(self.payee),
            BTT_LOCAL,
            self.deposit,
            self.expires_at,
        )
        return PayerChannel(terms, key, self.issued)


def sign_vouchers(payer: Payer, price: int, count: int) -> tuple[list[str], int]:
    """``count`` voucher headers, each one ``price`` above the last; and the new ``issued``.

    A module-level function so a process pool can run it.
    """
    channel = payer.channel()
    now = int(time.time())
    out = []
    for _ in range(count):
        send = channel.pay(price, now)[1]
        if not isinstance(send, SendVoucher):
            raise BenchError("PayerChannel.pay did not return SendVoucher second")
        out.append(send.voucher.to_header())
    return out, channel.issued


async def open_payer(ledger: LedgerClient, payee: str) -> Payer:
    key = PayerKey.generate()
    await ledger.faucet(key.address, FAUCET_GRANT)
    expires = int(time.time()) + CHANNEL_LIFETIME
    view = (await ledger.open_channel(key, TronAddress.parse(payee), DEPOSIT, expires))["channel"]
    domain = await ledger.domain()
    return Payer(
        key.secret,
        domain.chain_id,
        domain.contract,
        bytes.fromhex(view["channel_id"]),
        payee,
        DEPOSIT,
        expires,
    )


class Signer:
    """Signs voucher batches, in a process pool when the batch is large."""

    def __init__(self) -> None:
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    async def sign(self, payers: Sequence[Payer], price: int, count: int) -> list[list[str]]:
        if count * len(payers) < 20_000 or len(payers) < 2:
            results = [sign_vouchers(p, price, count) for p in payers]
        else:
            if self._pool is None:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=min(len(payers), os.cpu_count() or 1),
                    mp_context=multiprocessing.get_context("spawn"),
                )
            loop = asyncio.get_running_loop()
            results = await asyncio.gather(
                *(loop.run_in_executor(self._pool, sign_vouchers, p, price, count) for p in payers)
            )
        for payer, (_, issued) in zip(payers, results, strict=True):
            payer.issued = issued
        return [headers for headers, _ in results]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


# --- wrk ------------------------------------------------------------------------------------

WRK_LUA = r"""
-- bench_edge.lua (generated by loadtest/bench_edge.py). Every wrk thread has exactly one
-- connection, so its requests go out one after another, each with the next line of its own
-- header file (a voucher sequence with rising amounts: one channel per connection).
-- args: path prefix, chunk count, header file pattern (%d = thread id), header name, cycle
local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1]
  chunks = tonumber(args[2])
  header = args[4]
  cycle = args[5] == "1"
  values = {}
  for line in io.lines(string.format(args[3], id)) do
    values[#values + 1] = line
  end
  n = #values
  used = 0
  exhausted = 0
end

function request()
  used = used + 1
  local i = used
  if i > n then
    if cycle then
      i = (i - 1) % n + 1
    else
      exhausted = exhausted + 1
      i = n
    end
  end
  return wrk.format("GET", prefix .. ((used - 1) % chunks), {[header] = values[i]})
end

function done(summary, latency, requests)
  local used_total, exhausted_total = 0, 0
  for _, t in ipairs(threads) do
    used_total = used_total + t:get("used")
    exhausted_total = exhausted_total + t:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format(
    '\n{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"sent": %d, "exhausted": %d, "latency_p50_us": %d, "latency_p99_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, used_total, exhausted_total, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    duration_us: int
    bytes: int
    connect_errors: int
    read_errors: int
    write_errors: int
    status_errors: int
    """Responses with status >= 400 (wrk counts only those)."""
    timeouts: int
    sent: int
    """Requests the Lua script generated (some may be in flight when wrk stops)."""
    exhausted: int
    latency_p50_us: int
    latency_p99_us: int

    @property
    def rate(self) -> float:
        return self.requests / (self.duration_us / 1e6)

    @property
    def errors(self) -> int:
        return (
            self.connect_errors
            + self.read_errors
            + self.write_errors
            + self.status_errors
            + self.timeouts
        )


async def run_wrk(
    workdir: Path,
    base: str,
    prefix: str,
    pattern: Path,
    header: str,
    *,
    cycle: bool,
    connections: int,
    seconds: int,
) -> WrkResult:
    script = workdir / "bench_edge.lua"
    if not script.exists():
        script.write_text(WRK_LUA, encoding="utf-8")
    argv = [
        shutil.which("wrk") or "wrk",
        "-t",
        str(connections),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        base,
        "--",
        prefix,
        str(SERVE_CHUNKS),
        str(pattern),
        header,
        "1" if cycle else "0",
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds + 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise BenchError(f"wrk did not finish: {' '.join(argv)}") from None
    text = out.decode(errors="replace")
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return WrkResult(**json.loads(line))
    raise BenchError(f"wrk gave no result (exit {proc.returncode}): {text}{err.decode()}")


def thread_file(pattern: Path, thread: int) -> Path:
    """The file of wrk thread ``thread`` (numbered from 1) for a ``...-%d.txt`` pattern."""
    return Path(str(pattern).replace("%d", str(thread)))


def write_lines(path: Path, lines: Sequence[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


def remove_lines(pattern: Path, threads: int) -> None:
    for thread in range(1, threads + 1):
        thread_file(pattern, thread).unlink(missing_ok=True)


# --- 1. serving cached chunks ---------------------------------------------------------------

ACCEPTED = 'atlas_edge_vouchers_total{outcome="accepted"}'


@dataclass
class Env:
    cfg: Config
    workdir: Path
    procs: Processes
    session: aiohttp.ClientSession
    ledger: Proc
    origin: Proc
    signer: Signer
    notes: list[str]
    checks: dict[str, dict[str, Any]]


@dataclass
class PaidRun:
    result: WrkResult
    accepted: int
    """Vouchers the edge counted as accepted during the run (its /metrics)."""


class ServeBench:
    """wrk against the edge (a new voucher per request, or free) and against nginx."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.work = env.workdir / "serve"
        self.conns = env.cfg.connections
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
        self.edge = edge = env.procs.edge("serve-edge", env.ledger.url, "--free-mib", "10000000")
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
        self.nginx = nginx = start_nginx(env.procs, self.work / "nginx", NGINX_WORKERS)
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

    async def _wrk(
        self, target: Proc, prefix: str, pattern: Path, header: str, *, cycle: bool, seconds: int
    ) -> WrkResult:
        return await run_wrk(
            self.work,
            target.url,
            prefix,
            pattern,
            header,
            cycle=cycle,
            connections=self.conns,
            seconds=seconds,
        )

    async def run_nginx(self, seconds: int) -> None:
        assert self.nginx is not None
        self.reference.append(
            await self._wrk(
                self.nginx, "/chunk/", self.pad, "Atlas-Voucher", cycle=True, seconds=seconds
            )
        )

    async def run_free(self, seconds: int) -> None:
        assert self.edge is not None
        self.free.append(
            await self._wrk(
                self.edge,
                f"/v1/chunk/{self.cid}/",
                self.pad,
                "X-Bench-Pad",
                cycle=True,
                seconds=seconds,
            )
        )

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
            result = await self._wrk(
                edge,
                f"/v1/chunk/{self.cid}/",
                pattern,
                "Atlas-Voucher",
                cycle=False,
                seconds=seconds,
            )
            accepted = int(await edge_counter(session, edge.url, ACCEPTED) - before)
            remove_lines(pattern, self.conns)
            if not result.exhausted:
                self.paid.append(PaidRun(result, accepted))
                return result
            self.env.notes.append(
                f"serve: run {self.runs} ran out of vouchers ({supply} per connection); "
                "repeated with twice as many"
            )
            supply *= 2
        raise BenchError("the edge outran every voucher supply")

    def stop(self) -> None:
        for proc in (self.nginx, self.edge):
            if proc is not None:
                self.env.procs.stop(proc)

    def rows(self) -> list[Row]:
        cfg, paid = self.env.cfg, [run.result for run in self.paid]
        non_2xx = sum(r.status_errors for r in paid)
        socket_errors = sum(r.errors - r.status_errors for r in paid)
        completed = sum(r.requests for r in paid)
        accepted = sum(run.accepted for run in self.paid)
        latency = ", ".join(
            f"{name} {statistics.median(r.latency_p50_us for r in results) / 1000:.2f}/"
            f"{statistics.median(r.latency_p99_us for r in results) / 1000:.2f}"
            for name, results in (("voucher", paid), ("free", self.free), ("nginx", self.reference))
        )
        self.env.notes += [
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
        self.env.checks["serve"] = {
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
            self.env.notes.append("serve: WARNING: not every counted request was accepted")
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
    cfg, bench = env.cfg, ServeBench(env)
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


# --- 2. streaming 1 GiB through an edge -----------------------------------------------------


async def download_via_edge(
    session: aiohttp.ClientSession,
    edge: str,
    url: str,
    total: int,
    salt: int,
    cid: str | None = None,
) -> tuple[float, str]:
    """Seconds from POST /v1/fetch (skipped when ``cid`` is known) to the last chunk, with
    ``STREAM_WORKERS`` chunk requests in flight; and the content id."""
    started = time.perf_counter()
    if cid is None:
        cid = str((await edge_fetch(session, edge, url))["content_id"])
    count = -(-total // CHUNK)
    next_index = 0

    async def worker(content_id: str) -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            status, body, _ = await get_chunk(session, edge, content_id, index)
            if status != 200:
                raise BenchError(f"chunk {index}: {status} {body[:300]!r}")
            check_chunk(body, index, salt, min(CHUNK, total - index * CHUNK))

    await asyncio.gather(*(worker(cid) for _ in range(STREAM_WORKERS)))
    elapsed = time.perf_counter() - started
    sealed = await wait_sealed(session, edge, cid)
    if sealed["chunks_available"] != count:
        raise BenchError(f"edge holds {sealed['chunks_available']} chunks, expected {count}")
    return elapsed, cid


async def download_direct(session: aiohttp.ClientSession, url: str, total: int, salt: int) -> float:
    """Seconds to read ``url`` from the origin, checked chunk by chunk like the edge download."""
    started = time.perf_counter()
    async with session.get(url) as response:
        if response.status != 200:
            raise BenchError(f"origin: {response.status}")
        for index in range(-(-total // CHUNK)):
            size = min(CHUNK, total - index * CHUNK)
            check_chunk(await response.content.readexactly(size), index, salt, size)
        if await response.content.read(1):
            raise BenchError("origin sent more than expected")
    return time.perf_counter() - started


@dataclass
class StreamSamples:
    growth_mib: list[float] = field(default_factory=list)
    through: list[float] = field(default_factory=list)
    """GB/s from POST /v1/fetch to the last chunk: the body streams origin -> edge -> client."""
    stored: list[float] = field(default_factory=list)
    """GB/s downloading the same content again, now from the edge's store."""
    direct: list[float] = field(default_factory=list)
    hwm_reset: bool = True


async def stream_once(env: Env, rep: int, samples: StreamSamples) -> None:
    """One repetition on a fresh edge (a clean peak RSS and an empty store)."""
    session, total = env.session, env.cfg.stream_bytes
    name = f"stream-edge-{rep}"
    # Free allowance for the warm-up, the streamed body and its second download.
    edge = env.procs.edge(name, env.ledger.url, "--free-mib", "4096")
    try:
        warm = 1000 + rep  # the first transfer loads code and buffers: not growth
        await download_via_edge(
            session, edge.url, f"{env.origin.url}/blob/{MIB}?salt={warm}", MIB, warm
        )
        await asyncio.sleep(0.3)
        baseline = proc_status_kib(edge.pid, "VmRSS")
        samples.hwm_reset &= reset_peak_rss(edge.pid)
        salt = 2000 + rep
        url = f"{env.origin.url}/blob/{total}?salt={salt}"

        async def through_edge() -> None:
            with RssSampler(edge.pid) as sampler:
                seconds, cid = await download_via_edge(session, edge.url, url, total, salt)
                hwm = proc_status_kib(edge.pid, "VmHWM") if samples.hwm_reset else 0
            samples.growth_mib.append((max(sampler.peak, hwm) - baseline) / KIB)
            samples.through.append(total / seconds / GB)
            seconds, _ = await download_via_edge(session, edge.url, url, total, salt, cid)
            samples.stored.append(total / seconds / GB)

        async def direct() -> None:
            direct_salt = 3000 + rep
            seconds = await download_direct(
                session, f"{env.origin.url}/blob/{total}?salt={direct_salt}", total, direct_salt
            )
            samples.direct.append(total / seconds / GB)

        for step in [through_edge, direct] if rep % 2 == 0 else [direct, through_edge]:
            await step()
    finally:
        env.procs.stop(edge)
        shutil.rmtree(env.workdir / name, ignore_errors=True)


async def bench_stream(env: Env) -> list[Row]:
    total = env.cfg.stream_bytes
    samples = StreamSamples()
    for rep in range(env.cfg.stream_reps):
        await stream_once(env, rep, samples)
    size = f"{total // GIB} GiB" if total >= GIB else f"{total // MIB} MiB"
    growth = samples.growth_mib
    env.notes.append(
        f"stream: {size} of random bytes, {STREAM_WORKERS} chunk requests in flight, a fresh "
        "free edge per rep; RSS growth = peak (VmHWM after a clear_refs reset, and VmRSS polled "
        f"every {RSS_POLL * 1000:.0f} ms) - VmRSS before; per rep MiB: "
        + ", ".join(f"{g:.1f}" for g in growth)
        + ("" if samples.hwm_reset else " (VmRSS polling only: clear_refs refused)")
    )
    env.checks["stream"] = {
        "bytes": total,
        "growth_mib": growth,
        "hwm_reset": samples.hwm_reset,
    }
    direct = "same client, direct from the origin (one GET)"
    return [
        make_row(
            "stream_rss_growth",
            f"edge peak RSS growth, {size} streamed through",
            "MiB",
            growth,
            f"body size ({size}); ratio = share of the body held in memory",
            [total / MIB] * len(growth),
            "< 64 MiB",
            lambda _m, _r: max(growth) < 64,
        ),
        make_row(
            "stream_through",
            f"download {size} via edge, origin fetch included",
            "GB/s",
            samples.through,
            direct,
            samples.direct,
        ),
        make_row(
            "stream_stored",
            f"download {size} again, from the edge's store",
            "GB/s",
            samples.stored,
            direct,
            samples.direct,
        ),
    ]


# --- 3. pages with and without zstd ---------------------------------------------------------


def collect_pages(dest: Path) -> dict[str, str]:
    """Copy the HTML/CSS/JS shipped in installed packages (and the stdlib's IDLE help page)
    into ``dest``, deduplicated; returns file name -> kind."""
    roots = [Path(sysconfig.get_paths()["purelib"])]
    candidates: list[Path] = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix in PAGE_SUFFIXES and path.is_file():
                candidates.append(path)
    help_page = Path(sysconfig.get_paths()["stdlib"]) / "idlelib" / "help.html"
    if help_page.is_file():
        candidates.append(help_page)
    dest.mkdir(parents=True)
    seen: set[bytes] = set()
    kinds: dict[str, str] = {}
    total = 0
    for path in candidates:
        size = path.stat().st_size
        if size < PAGE_MIN_SIZE or total + size > PAGE_MAX_TOTAL:
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).digest()
        if digest in seen:
            continue
        seen.add(digest)
        name = f"{len(kinds):03d}-{path.name}"
        (dest / name).write_bytes(data)
        kinds[name] = PAGE_SUFFIXES[path.suffix]
        total += size
    if not kinds:
        raise BenchError("no HTML/CSS/JS files found in the installed packages")
    return kinds


async def bench_pages(env: Env, pages: Path, kinds: dict[str, str]) -> list[Row]:
    session = env.session
    edge = env.procs.edge("pages-edge", env.ledger.url, "--free-mib", "100000")
    try:
        contents: list[tuple[str, str, int]] = []  # name, content id, chunk count
        raw_bytes: dict[str, int] = dict.fromkeys(PAGE_TYPES, 0)
        zstd_bytes: dict[str, int] = dict.fromkeys(PAGE_TYPES, 0)
        chunks: list[bytes] = []
        for name in kinds:
            info = await edge_fetch(session, edge.url, f"{env.origin.url}/pages/{name}")
            sealed = await wait_sealed(session, edge.url, info["content_id"])
            contents.append((name, info["content_id"], sealed["chunks_available"]))
        # Bytes on the wire, and a check that both forms carry the file.
        decompressor = zstandard.ZstdDecompressor()
        for name, cid, count in contents:
            raw = bytearray()
            for index in range(count):
                s1, plain, h1 = await get_chunk(
                    session, edge.url, cid, index, {"Accept-Encoding": "identity"}
                )
                s2, packed, h2 = await get_chunk(
                    session, edge.url, cid, index, {"Accept-Encoding": "zstd"}
                )
                if s1 != 200 or s2 != 200 or "Content-Encoding" in h1:
                    raise BenchError(f"{name} chunk {index}: {s1} {s2}")
                unpacked = (
                    decompressor.decompress(packed, max_output_size=CHUNK)
                    if h2.get("Content-Encoding") == "zstd"
                    else packed
                )
                if unpacked != plain:
                    raise BenchError(f"{name} chunk {index}: zstd form differs from identity")
                raw += plain
                chunks.append(plain)
                raw_bytes[kinds[name]] += len(plain)
                zstd_bytes[kinds[name]] += len(packed)
            if bytes(raw) != (pages / name).read_bytes():
                raise BenchError(f"{name}: edge chunks differ from the file")

        async def fetch_all(encoding: str) -> float:
            started = time.perf_counter()
            for _, cid, count in contents:
                for index in range(count):
                    status, _, _ = await get_chunk(
                        session, edge.url, cid, index, {"Accept-Encoding": encoding}
                    )
                    if status != 200:
                        raise BenchError(f"chunk {index}: {status}")
            return time.perf_counter() - started

        total_mib = sum(len(c) for c in chunks) / MIB
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)

        def compress_all() -> float:
            started = time.perf_counter()
            for chunk in chunks:
                compressor.compress(chunk)
            return time.perf_counter() - started

        def hash_all() -> float:
            started = time.perf_counter()
            for chunk in chunks:
                hashlib.sha256(chunk).digest()
            return time.perf_counter() - started

        await fetch_all("zstd")  # warm-up
        await fetch_all("identity")
        compress_all()
        hash_all()
        times: dict[str, list[float]] = {"zstd": [], "identity": [], "compress": [], "hash": []}
        for rep in range(env.cfg.page_reps):
            steps: list[tuple[str, Callable[[], Any]]] = [
                ("zstd", lambda: fetch_all("zstd")),
                ("identity", lambda: fetch_all("identity")),
                ("compress", lambda: asyncio.to_thread(compress_all)),
                ("hash", lambda: asyncio.to_thread(hash_all)),
            ]
            shift = rep % len(steps)
            for key, step in [*steps[shift:], *steps[:shift]]:
                times[key].append(await step())
    finally:
        env.procs.stop(edge)

    def per_mib(seconds: list[float]) -> list[float]:
        return [s * 1000 / total_mib for s in seconds]

    counts = {kind: sum(1 for k in kinds.values() if k == kind) for kind in PAGE_TYPES}
    env.notes.append(
        f"pages: {len(kinds)} files from installed packages ("
        + ", ".join(f"{counts[k]} {k} {raw_bytes[k] / KIB:,.0f} KiB" for k in PAGE_TYPES)
        + f"), {len(chunks)} chunks; wire bytes = chunk response bodies (Content-Length); "
        f"zstd level {ZSTD_LEVEL} as cdn_edge/wire_encoding.py"
    )
    files = [(pages / name).read_bytes() for name in kinds]
    raw_total = sum(len(f) for f in files)
    whole_zstd = sum(len(zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(f)) for f in files)
    whole_gzip = sum(len(gzip.compress(f, 6)) for f in files)
    env.notes.append(
        f"pages: for comparison, whole files (not 256 KiB chunks): zstd level {ZSTD_LEVEL} "
        f"{whole_zstd / raw_total:.2f}x, gzip -6 {whole_gzip / raw_total:.2f}x of raw"
    )
    env.checks["pages"] = {
        "files": len(kinds),
        "chunks": len(chunks),
        "raw_bytes": raw_bytes,
        "zstd_bytes": zstd_bytes,
        "whole_file_zstd_ratio": whole_zstd / raw_total,
        "whole_file_gzip6_ratio": whole_gzip / raw_total,
    }
    rows: list[Row] = []
    for kind in [*PAGE_TYPES, "all"]:
        plain_size = sum(raw_bytes.values()) if kind == "all" else raw_bytes[kind]
        packed_size = sum(zstd_bytes.values()) if kind == "all" else zstd_bytes[kind]
        if not plain_size:
            continue
        rows.append(
            make_row(
                f"pages_wire_{kind}",
                f"page set wire bytes with zstd: {kind}",
                "KiB",
                [packed_size / KIB],
                "same chunks without Accept-Encoding: zstd",
                [plain_size / KIB],
                "ratio <= 0.30",
                lambda _m, ratio: ratio <= 0.30,
            )
        )
    rows += [
        make_row(
            "pages_zstd_cost",
            f"zstd level {ZSTD_LEVEL} compress, page chunks",
            "ms/MiB",
            per_mib(times["compress"]),
            "hashlib.sha256 of the same chunks",
            per_mib(times["hash"]),
        ),
        make_row(
            "pages_fetch_zstd",
            "client time for all page chunks, zstd",
            "ms/MiB",
            per_mib(times["zstd"]),
            "same chunks, identity",
            per_mib(times["identity"]),
        ),
    ]
    return rows


# --- report ---------------------------------------------------------------------------------


def format_value(value: float, unit: str) -> str:
    if unit in ("req/s", "KiB"):
        return f"{value:,.0f}"
    if unit == "MiB":
        return f"{value:,.1f}"
    return f"{value:.2f}"


def references(rows: Sequence[Row]) -> list[str]:
    users: dict[str, list[str]] = {}
    for row in rows:
        users.setdefault(row.reference, []).append(row.id)
    return [f"  {ref}: {', '.join(ids)}" for ref, ids in users.items()]


def render(facts: dict[str, Any], cfg: Config, rows: Sequence[Row], notes: Sequence[str]) -> str:
    header = ("measurement", "median", "unit", "reference median", "ratio", "goal", "met")
    cells = [
        (
            row.operation,
            format_value(row.median, row.unit),
            row.unit,
            format_value(row.reference_median, row.unit),
            f"{row.ratio:.2f}",
            row.goal or "-",
            {True: "yes", False: "NO", None: "-"}[row.met],
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        name, *rest = values
        parts = [name.ljust(widths[0])]
        parts += [
            v.ljust(w) if i in (1, 4, 5) else v.rjust(w)
            for i, (v, w) in enumerate(zip(rest, widths[1:], strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [
        "Atlas edge benchmark (loadtest/bench_edge.py)",
        f"cpu:      {facts['cpu_model']}",
        f"cores:    {facts['cores']} ({facts['usable_cores']} usable)",
        f"python:   {facts['python']} on {facts['platform']}",
        f"date:     {facts['date']}  commit: {facts['git_commit'] or 'unknown'}  "
        f"load average at start: {facts['load_average']:.2f}",
        f"disk:     data dirs on {facts['data_dir_filesystem']}",
        f"libs:     aiohttp {facts['aiohttp']}, zstandard {facts['zstandard']}, "
        f"{facts['wrk']}, {facts['nginx']}",
        f"mode:     {cfg.mode}, medians of {cfg.reps} (serve), {cfg.stream_reps} (stream), "
        f"{cfg.page_reps} (pages) repetitions; ratio = median / reference median",
        "",
        line(header),
        line(["-" * w for w in widths]),
        *(line(c) for c in cells),
        "",
        "references:",
        *references(rows),
        "",
        "notes:",
        *(f"  {note}" for note in notes),
    ]
    return "\n".join(out)


def tool_version(argv: Sequence[str]) -> str:
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return f"{argv[0]} missing"
    text = (result.stdout + result.stderr).strip().splitlines()
    return re.sub(r"\s+Copyright.*", "", text[0]) if text else f"{argv[0]} unknown"


def ensure_tools(install: bool) -> None:
    missing = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None]
    if not missing:
        return
    if not install:
        raise SystemExit(
            f"bench_edge needs {' and '.join(missing)} (Debian packages of those names): "
            "apt-get install them, or run with --install-deps"
        )
    print(f"installing system packages: {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, timeout=600)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--reps", type=int, help="repetitions of the serve and pages runs")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument(
        "--connections",
        type=int,
        help="wrk connections (= threads = channels) for serve (default 8)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        metavar="PART",
        help=f"run only this part ({', '.join(PARTS)}); repeatable",
    )
    parser.add_argument(
        "--install-deps", action="store_true", help="apt-get install wrk and nginx when missing"
    )
    parser.add_argument("--origin", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pages", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="atlas-bench-edge-"))
    path.chmod(0o755)  # nginx workers (an unprivileged user) read files below it
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Outcome:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Counts behind the rows (requests refused, vouchers accepted, ...) for --json."""
    failed: list[str] = field(default_factory=list)


async def run_all(cfg: Config, workdir: Path, only: Sequence[str], outcome: Outcome) -> None:
    """Every part, each in its own try: one failing part does not hide the others."""
    procs = Processes(workdir)
    signer = Signer()
    try:
        kinds = collect_pages(workdir / "pages")
        ledger = procs.ledger()
        origin = procs.origin(workdir / "pages")
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            env = Env(
                cfg, workdir, procs, session, ledger, origin, signer, outcome.notes, outcome.checks
            )
            parts: dict[str, Callable[[], Any]] = {
                "serve": lambda: bench_serve(env),
                "stream": lambda: bench_stream(env),
                "pages": lambda: bench_pages(env, workdir / "pages", kinds),
            }
            for name, part in parts.items():
                if name not in only:
                    continue
                started = time.perf_counter()
                try:
                    outcome.rows += await part()
                except Exception as exc:
                    traceback.print_exc()
                    outcome.failed.append(name)
                    outcome.notes.append(f"{name}: FAILED: {type(exc).__name__}: {exc}")
                outcome.notes.append(f"{name}: took {time.perf_counter() - started:.1f} s")
    finally:
        signer.close()
        procs.close()
        outcome.notes += [f"WARNING: {line}" for line in procs.bad_exits]


def filesystem_of(path: Path) -> str:
    """Device and type of the mount holding ``path`` (from /proc/mounts)."""
    best = ("", "unknown", "unknown")
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text(encoding="utf-8").splitlines():
            device, mount, kind = line.split()[:3]
            inside = str(path).startswith(mount.rstrip("/") + "/") or str(path) == mount
            if inside and len(mount) >= len(best[0]):
                best = (mount, device, kind)
    return f"{best[1]} {best[2]}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.origin:
        run_origin(args.port, args.pages)
        return 0
    cfg = QUICK if args.quick else FULL
    if args.reps is not None:
        if args.reps < 1:
            raise SystemExit("--reps must be at least 1")
        cfg = replace(cfg, reps=args.reps, page_reps=args.reps)
    if args.connections is not None:
        if not 1 <= args.connections <= 32:
            raise SystemExit("--connections must be 1..32 (the edge allows 32 per client)")
        cfg = replace(cfg, connections=args.connections)
    ensure_tools(args.install_deps)
    started = time.perf_counter()
    outcome = Outcome()
    with workspace() as workdir:
        facts = {
            **machine_facts(),
            "load_average": os.getloadavg()[0],
            "data_dir_filesystem": filesystem_of(workdir),
            "aiohttp": version_of("aiohttp"),
            "zstandard": version_of("zstandard"),
            "wrk": tool_version(["wrk", "-v"]),
            "nginx": tool_version(["nginx", "-v"]),
        }
        asyncio.run(run_all(cfg, workdir, args.only or PARTS, outcome))
    elapsed = time.perf_counter() - started
    print(render(facts, cfg, outcome.rows, outcome.notes))
    print(f"wall time: {elapsed:.1f} s")
    if args.json is not None:
        report = {
            "benchmark": "edge",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": facts,
            "config": asdict(cfg),
            "wall_time_s": elapsed,
            "failed": outcome.failed,
            "notes": outcome.notes,
            "checks": outcome.checks,
            "results": [asdict(row) for row in outcome.rows],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
