"""Chunks on disk, addressed by their SHA-256, under a size cap.

A chunk is written once to ``chunks/ab/abcdef...`` through a temporary file
and a rename, so a reader never sees half a chunk. Identical chunks of
different content share one file. The content index (:mod:`cdn_edge.content.index`) says
which content uses which chunk; eviction asks it what is unused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


class ChunkStore:
    def __init__(self, root: Path) -> None:
        self.root = root / "chunks"
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)
        self._tmp = root / "tmp"
        self._tmp.mkdir(exist_ok=True)
        for stale in self._tmp.iterdir():
            stale.unlink()

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

    def put(self, sha256: bytes, data: bytes) -> None:
        """Store ``data`` under its hash (the caller computed it); no-op if present."""
        final = self.path(sha256)
        if final.exists():
            return
        final.parent.mkdir(exist_ok=True)
        tmp = self._tmp / f"{sha256.hex()}.{os.getpid()}.{id(data)}"
        with tmp.open("wb") as handle:
            handle.write(data)
        tmp.replace(final)

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
