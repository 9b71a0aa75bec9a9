"""Where ``atlas fetch -o FILE`` puts the bytes: ``FILE.part`` and its ``FILE.atlas`` sidecar.

The sidecar records the signed head and how many chunks are safely on disk
(written only after the data is flushed), so an interrupted fetch resumes
where it stopped and never pays twice for a chunk it already has. A fetch
that fails keeps both only if running it again can finish it (it stopped at
its spend limit, or for want of a provider or the ledger), with the sidecar
counting every chunk written; otherwise (the content itself failed) both go.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

from requester.channel_manager import SpendLimitReached
from requester.client import Download
from requester.downloader import ContentFailedAtOrigin
from requester.protocol import BTT_LOCAL, ProtocolError, b64url_decode, b64url_encode, format_amount
from requester.protocol.manifest import MAX_HEAD_BYTES


async def save(download: Download, output: Path | None, sidecar: Path | None, url: str,
               done: int) -> None:  # fmt: skip
    """Write the download to ``output`` (through ``FILE.part``, ``done`` chunks already
    there) or, without one, to stdout."""
    tty = sys.stderr.isatty()
    if output is None:
        sink: IO[bytes] = sys.stdout.buffer
        async for data in download.chunks():
            sink.write(data)
        sink.flush()
        return
    assert sidecar is not None
    part = output.with_name(output.name + ".part")
    mode = "r+b" if done and part.exists() else "wb"
    try:
        with part.open(mode) as sink:
            sink.truncate(done * download.head.chunk_size)
            sink.seek(done * download.head.chunk_size)
            _write_sidecar(sidecar, url, download, done)
            last_report = 0.0
            try:
                async for data in download.chunks():
                    sink.write(data)
                    done += 1
                    if done % 8 == 0:
                        sink.flush()
                        os.fsync(sink.fileno())
                        _write_sidecar(sidecar, url, download, done)
                    if tty and time.monotonic() - last_report > 0.5:
                        last_report = time.monotonic()
                        _report(download)
            finally:
                sink.flush()
                os.fsync(sink.fileno())
    except BaseException as exc:
        _keep_or_remove(exc, part, sidecar, url, download, done)
        raise
    _finish(part, output, sidecar)
    if tty:
        _report(download)
        sys.stderr.write("\n")


def _keep_or_remove(exc: BaseException, part: Path, sidecar: Path, url: str, download: Download,
                    done: int) -> None:  # fmt: skip
    """After a failed fetch: keep what is on disk if the same command can finish it (the
    sidecar then counts every chunk written, so none is paid twice), else remove it."""
    resumable = isinstance(exc, SpendLimitReached) or not isinstance(
        exc, ProtocolError | ContentFailedAtOrigin
    )
    if resumable and done:
        _write_sidecar(sidecar, url, download, done)
        exc.add_note(
            f"the {done} chunks fetched are kept in {part}: run the same command to go on "
            "from there (they are not fetched or paid for again)"
        )
    else:
        part.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)


def _finish(part: Path, output: Path, sidecar: Path) -> None:
    part.replace(output)
    sidecar.unlink(missing_ok=True)


def _report(download: Download) -> None:
    p = download.progress
    rate = p.delivered_bytes / max(time.monotonic() - p.started, 1e-3) / (1 << 20)
    active = sum(1 for s in p.providers.values() if s.chunks and not s.dropped)
    sys.stderr.write(
        f"\r{p.delivered_bytes / (1 << 20):9.1f} MiB  {rate:7.1f} MiB/s  "
        f"{format_amount(p.paid, BTT_LOCAL)} spent  {active} providers   "
    )
    sys.stderr.flush()


def provider_lines(summary: dict[str, Any]) -> str:
    """The per-provider part of a fetch's summary, a line each, for people."""
    lines = []
    for url, p in summary["providers"].items():
        if not p["chunks"]:
            continue
        paid = p["price_per_mib_paid"]
        price = "" if paid is None else f" at {format_amount(int(paid), BTT_LOCAL)}/MiB"
        mib = {k: p[k] / (1 << 20) for k in ("bytes", "paid_bytes", "free_bytes", "rate")}
        lines.append(
            f"  {url}  {p['lane']}: {mib['bytes']:.1f} MiB ({mib['paid_bytes']:.1f} paid{price}, "
            f"{mib['free_bytes']:.1f} free)  {mib['rate']:.2f} MiB/s"
        )
    spent = format_amount(int(summary["paid"]), BTT_LOCAL)
    head = f"atlas: {summary['bytes']} bytes in {summary['seconds']} s, {spent} signed"
    return "\n".join([head, *lines])


def sidecar_of(output: Path | None) -> Path | None:
    return None if output is None else output.with_name(output.name + ".atlas")


def load_sidecar(sidecar: Path | None, url: str) -> tuple[bytes, int] | None:
    if sidecar is None or not sidecar.exists():
        return None
    try:
        doc = json.loads(sidecar.read_text())
        if doc.get("url") != url:
            return None
        return b64url_decode(doc["head"], MAX_HEAD_BYTES, "head"), int(doc["chunks_done"])
    except (ValueError, KeyError, ProtocolError):
        return None


def _write_sidecar(sidecar: Path, url: str, download: Download, done: int) -> None:
    tmp = sidecar.with_suffix(".tmp")
    tmp.write_text(json.dumps({
        "url": url, "head": b64url_encode(download.head.encode()), "chunks_done": done,
    }))  # fmt: skip
    tmp.replace(sidecar)
