"""requester/file_writes.py: large buffers go to the kernel in slices, a short write continued."""

from __future__ import annotations

import os
from pathlib import Path

from requester.file_writes import WRITE_SIZE, write_all


def test_a_large_buffer_is_written_in_slices_and_short_writes_continue() -> None:
    data = os.urandom(3 * WRITE_SIZE + 1234)
    out, asked = bytearray(), []

    def write(view: memoryview) -> int:  # a writer that takes at most 100,000 bytes a call
        asked.append(len(view))
        taken = min(len(view), 100_000)
        out.extend(view[:taken])
        return taken

    write_all(write, data)
    assert bytes(out) == data
    assert max(asked) == WRITE_SIZE


def test_to_a_file_descriptor(tmp_path: Path) -> None:
    data = os.urandom(WRITE_SIZE + 7)
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        write_all(lambda view: os.write(fd, view), data)
    finally:
        os.close(fd)
    assert path.read_bytes() == data
