"""Where ``atlas fetch -o FILE`` puts the bytes: ``FILE.part`` and its ``FILE.atlas`` sidecar.

The sidecar records the signed head and how many chunks are safely on disk
(written only after the data is flushed), so an interrupted fetch resumes
where it stopped and never pays twice for a chunk it already has. A fetch
that fails keeps both only if running it again can finish it (it stopped at
its spend limit, or for want of a provider or the ledger), with the sidecar
counting every chunk written; otherwise (the content itself failed) both go.

The disk work runs in one worker thread, in order (:class:`PartFile`): each
chunk's write, and every 8th chunk an fsync then the sidecar's rewrite (a few ms
of disk waits), while the event loop goes on downloading. The loop waits for each
such checkpoint before it queues the next chunk, so at most 8 chunks are ever on
disk and not yet claimed, as when all of it ran on the loop. It also waits while
the chunks queued and not yet written pass 2 MiB (:data:`QUEUE_BYTES`), so a
slow disk holds back the download instead of the process's memory growing by up
to 8 chunks (8 MiB with the 1 MiB chunks of large bodies).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

from requester.channel_manager import SpendLimitReached
from requester.cli.fetch_progress import FetchBar
from requester.client import Download
from requester.download_failures import ContentFailedAtOrigin
from requester.file_writes import write_all
from requester.protocol import ProtocolError, b64url_decode, b64url_encode
from requester.protocol.manifest import MAX_HEAD_BYTES


async def save(download: Download, output: Path | None, sidecar: Path | None, url: str,
               done: int, *, shown: bool = False) -> None:  # fmt: skip
    """Write the download to ``output`` (through ``FILE.part``, ``done`` chunks already
    there) or, without one, to stdout; with ``shown``, a progress bar on stderr."""
    bar = FetchBar(download, shown=shown, done_bytes=done * download.head.chunk_size)
    if output is None:
        sink: IO[bytes] = sys.stdout.buffer
        with bar:
            async for data in download.chunks():
                sink.write(data)
                bar.update()
        sink.flush()
        return
    assert sidecar is not None
    part = output.with_name(output.name + ".part")
    mode = "r+b" if done and part.exists() else "wb"
    head = b64url_encode(download.head.encode())
    try:
        with part.open(mode) as sink, bar:
            sink.truncate(done * download.head.chunk_size)
            sink.seek(done * download.head.chunk_size)
            _write_sidecar(sidecar, url, download, done)
            disk = PartFile(sink, sidecar, url, head, done)
            try:
                async for data in download.chunks():
                    await disk.room(len(data))
                    disk.write(data)
                    if disk.queued % CHECKPOINT == 0:
                        await disk.checkpoint()
                    bar.update()
            finally:
                done = disk.close()
            disk.check()  # a write that failed after the last checkpoint
    except BaseException as exc:
        _keep_or_remove(exc, part, sidecar, url, download, done)
        raise
    _finish(part, output, sidecar)


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


CHECKPOINT = 8
"""Chunks between two fsyncs of ``FILE.part`` (each followed by the sidecar's rewrite)."""
QUEUE_BYTES = 2 * 1024 * 1024
"""Bytes queued for ``FILE.part`` and not yet written past which :meth:`PartFile.room` waits
(one chunk is always let in, whatever its size)."""


class PartFile:
    """``FILE.part``'s writes, fsyncs and sidecar rewrites, in order, in one worker thread.
    After a failed write nothing more is written or claimed; the failure is raised on
    the loop (by the next :meth:`room`, :meth:`write` or :meth:`checkpoint`, else
    :meth:`check`)."""

    def __init__(self, sink: IO[bytes], sidecar: Path, url: str, head: str, done: int) -> None:
        self._sink, self._sidecar, self._url, self._head = sink, sidecar, url, head
        self.queued = done
        """Chunks in the file or queued for it (the loop's count)."""
        self._written = done
        """Chunks in the file (the worker's count; the loop reads it only after close)."""
        self._failed: BaseException | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="atlas-part")
        self._pending: deque[tuple[Future[None], int]] = deque()
        """Writes queued and not seen done, oldest first (one worker: they finish in order)."""
        self._pending_bytes = 0

    @property
    def pending_bytes(self) -> int:
        """Bytes queued for the file and not written yet."""
        while self._pending and self._pending[0][0].done():
            self._pending_bytes -= self._pending.popleft()[1]
        return self._pending_bytes

    async def room(self, size: int) -> None:
        """Wait until ``size`` more bytes fit in the queue (:data:`QUEUE_BYTES`), or it is
        empty; a write that failed meanwhile is raised here."""
        while self.pending_bytes and self.pending_bytes + size > QUEUE_BYTES:
            with contextlib.suppress(Exception):  # its error is raised by check() below
                await asyncio.wrap_future(self._pending[0][0])
        self.check()

    def write(self, data: bytes) -> None:
        """Queue the next chunk's write."""
        self.check()
        self._pending.append((self._worker.submit(self._write, data), len(data)))
        self._pending_bytes += len(data)
        self.queued += 1

    async def checkpoint(self) -> None:
        """Wait until every queued chunk is written and fsynced and the sidecar counts it."""
        await asyncio.wrap_future(self._worker.submit(self._sync))

    def close(self) -> int:
        """Wait for the queued work (a cancelled :meth:`checkpoint` leaves it running), then
        fsync: the number of chunks safely in the file."""
        self._worker.shutdown(wait=True)
        self._sink.flush()
        os.fsync(self._sink.fileno())
        return self._written

    def check(self) -> None:
        """Raise the error a write met, if one did."""
        if self._failed is not None:
            raise self._failed

    def _write(self, data: bytes) -> None:
        if self._failed is not None:
            return
        try:
            write_all(self._sink.write, data)  # in slices (requester/file_writes.py)
        except BaseException as exc:
            self._failed = exc
            raise
        self._written += 1

    def _sync(self) -> None:
        self.check()
        self._sink.flush()
        os.fsync(self._sink.fileno())
        _replace_sidecar(self._sidecar, self._url, self._head, self._written)


def _write_sidecar(sidecar: Path, url: str, download: Download, done: int) -> None:
    _replace_sidecar(sidecar, url, b64url_encode(download.head.encode()), done)


def _replace_sidecar(sidecar: Path, url: str, head: str, done: int) -> None:
    tmp = sidecar.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "head": head, "chunks_done": done}))
    tmp.replace(sidecar)
