"""Chunks on disk, addressed by their SHA-256, under a size cap.

A chunk is written once to ``chunks/ab/abcdef...`` through a temporary file
and a rename, so a reader never sees half a chunk. Identical chunks of
different content share one file. The content index (:mod:`cdn_edge.content.index`) says
which content uses which chunk; eviction asks it what is unused.
"""

from __future__ import annotations

import itertools
import os
from functools import partial
from pathlib import Path
from typing import BinaryIO

from requester.file_writes import write_all


class ChunkStore:
    def __init__(self, root: Path) -> None:
        self.root = root / "chunks"
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)
        self._tmp = root / "tmp"
        self._tmp.mkdir(exist_ok=True)
        for stale in self._tmp.iterdir():
            stale.unlink()
        self._names = itertools.count()
        self._dirs: set[str] = set()

    def path(self, sha256: bytes) -> Path:
        name = sha256.hex()
        return self.root / name[:2] / name

    def open(self, sha256: bytes) -> BinaryIO:
        """The chunk's file, unbuffered (for sendfile); raises FileNotFoundError.

        Paths are built as strings: this runs per served chunk, where pathlib's objects
        cost more than the open itself.
        """
        name = sha256.hex()
        return open(f"{self._root}/{name[:2]}/{name}", "rb", buffering=0)  # noqa: PTH123

    def has(self, sha256: bytes) -> bool:
        return self.path(sha256).exists()

    def write_tmp(self, sha256: bytes, data: bytes) -> Path | None:
        """Write ``data`` to a temporary file for :meth:`adopt`, from any thread; None if
        the store already holds these bytes (adopt checks again)."""
        return None if self.path(sha256).exists() else self._write(data)

    def open_tmp(self) -> tuple[Path, int]:
        """A new temporary file for :meth:`adopt`, open for writing (any thread closes it)."""
        tmp = self._tmp / f"{os.getpid()}.{next(self._names)}"
        return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)

    def adopt(self, sha256: bytes, tmp: Path | None, data: bytes | None = None) -> None:
        """Put a file written by :meth:`write_tmp` or :meth:`open_tmp` in place under its
        hash (on the thread that also writes the chunk's row): dropped if the store holds
        the bytes by now, and the bytes written from ``data`` if ``tmp`` is None and the
        file went since."""
        final = self.path(sha256)
        if final.exists():
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            return
        if tmp is None:
            if data is None:
                raise FileNotFoundError(f"chunk {sha256.hex()} went, and no bytes to write")
            tmp = self._write(data)
        if final.parent.name not in self._dirs:  # 256 of them: made once each, not per chunk
            final.parent.mkdir(exist_ok=True)
            self._dirs.add(final.parent.name)
        tmp.replace(final)

    def _write(self, data: bytes) -> Path:
        tmp, fd = self.open_tmp()
        try:
            write_all(partial(os.write, fd), data)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        return tmp

    def get(self, sha256: bytes) -> bytes | None:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, sha256: bytes) -> int:
        """Remove a chunk file; returns the bytes freed."""
        path = self.path(sha256)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size
