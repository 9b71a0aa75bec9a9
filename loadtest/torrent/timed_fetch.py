"""``atlas fetch`` run unchanged in this process, ``AtlasClient.open`` and ``Download.chunks``
wrapped with ``time.monotonic()`` stamps, written at exit to ``$ATLAS_BENCH_STAMPS`` as JSON::

    ATLAS_BENCH_STAMPS=FILE python timed_fetch.py fetch MAGNET --file PATH -o OUT --json ...
"""

from __future__ import annotations

import time

STARTED = time.monotonic()

import json  # noqa: E402 (after the first stamp, like the imports it times)
import os  # noqa: E402
import sys  # noqa: E402
from collections.abc import AsyncGenerator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from requester.cli import main as atlas_main  # noqa: E402
from requester.client import AtlasClient, Download  # noqa: E402

STAMPS_ENV = "ATLAS_BENCH_STAMPS"
stamps: dict[str, float] = {"started": STARTED, "imported": time.monotonic()}
_open = AtlasClient.open
_chunks = Download.chunks


async def timed_open(self: AtlasClient, *args: Any, **kwargs: Any) -> Download:
    stamps["open"] = time.monotonic()
    download = await _open(self, *args, **kwargs)
    stamps["opened"] = time.monotonic()
    return download


async def timed_chunks(self: Download) -> AsyncGenerator[bytes, None]:
    async for data in _chunks(self):
        if "first_chunk" not in stamps:
            stamps["first_chunk"] = time.monotonic()
        yield data
    stamps["last_chunk"] = time.monotonic()


def main() -> None:
    target = os.environ.get(STAMPS_ENV)
    if not target:
        raise SystemExit(f"set {STAMPS_ENV} to the file the stamps go to")
    AtlasClient.open = timed_open  # type: ignore[method-assign]
    Download.chunks = timed_chunks  # type: ignore[method-assign]
    try:
        atlas_main(args=sys.argv[1:], prog_name="atlas")
    finally:
        Path(target).write_text(json.dumps(stamps), encoding="utf-8")


if __name__ == "__main__":
    main()
