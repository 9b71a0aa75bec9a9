"""Sizes and rates shared by the benchmarks."""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
GB = 1e9
CHUNK = 256 * KIB
