"""``FILE.part``'s write queue is bounded in bytes (requester/cli/fetch_output.py).

A disk slower than the network used to let up to 8 chunks (8 MiB with the 1 MiB chunks
of large bodies) wait in the writer's queue, on top of the download's window. Here the
"disk" is a pipe nobody reads yet, so the writer thread blocks on its first chunk: the
loop may queue chunks up to QUEUE_BYTES, and then waits instead of queuing more.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from requester.cli.fetch_output import QUEUE_BYTES, PartFile

CHUNK = 1024 * 1024


def drain(fd: int, into: bytearray) -> None:
    while data := os.read(fd, 1 << 16):
        into += data


async def test_the_loop_waits_once_the_queue_holds_queue_bytes(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    got = bytearray()
    with os.fdopen(write_end, "wb", buffering=0) as sink:
        disk = PartFile(sink, tmp_path / "f.atlas", "http://x", "head", 0)
        queued = 0
        while True:  # queue chunks while room() lets them in at once
            try:
                await asyncio.wait_for(disk.room(CHUNK), 0.5)
            except TimeoutError:
                break
            disk.write(bytes([queued]) * CHUNK)
            queued += 1
            assert queued * CHUNK <= QUEUE_BYTES + CHUNK  # never more than the bound lets in
        assert queued == QUEUE_BYTES // CHUNK  # the bound was reached, and held
        assert disk.pending_bytes == queued * CHUNK
        reader = threading.Thread(target=drain, args=(read_end, got))
        reader.start()  # the "disk" moves again: room() returns once the oldest is written
        await asyncio.wait_for(disk.room(CHUNK), 30)
        disk.write(b"z" * CHUNK)
        with pytest.raises(OSError):  # the writes are done; a pipe cannot be fsynced
            disk.close()
    reader.join(30)
    os.close(read_end)
    expected = b"".join(bytes([i]) * CHUNK for i in range(queued)) + b"z" * CHUNK
    assert bytes(got) == expected  # every chunk written, in order


async def test_a_chunk_larger_than_the_bound_still_goes_through(tmp_path: Path) -> None:
    with (tmp_path / "f.part").open("wb") as sink:
        disk = PartFile(sink, tmp_path / "f.atlas", "http://x", "head", 0)
        for _ in range(2):
            await asyncio.wait_for(disk.room(2 * QUEUE_BYTES), 30)
            disk.write(b"x" * 2 * QUEUE_BYTES)
        await disk.checkpoint()
        assert disk.close() == 2
    assert (tmp_path / "f.part").stat().st_size == 4 * QUEUE_BYTES
