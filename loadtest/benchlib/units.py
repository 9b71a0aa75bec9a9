"""Sizes and rates shared by the benchmarks."""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
GB = 1e9
CHUNK = 256 * KIB


def size_text(size: int) -> str:
    """``1 GiB``, ``100 MiB`` or ``16 KiB``: whole units, the largest that fits."""
    if size >= GIB and size % GIB == 0:
        return f"{size // GIB} GiB"
    return f"{size // MIB} MiB" if size >= MIB else f"{size // KIB} KiB"
