"""One table from every benchmark's ``--json`` report: each Atlas median beside its reference."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loadtest.harness.rows import format_value, table, verdict

HEADER = ("benchmark", "measurement", "Atlas", "reference", "ratio", "goal", "met", "n")
LEFT = (0, 1, 3, 5, 6)
SKIPPED = re.compile(r"manifest_(build|verify)_time")
"""bench_protocol reports the manifest both as seconds and as GB/s; the table keeps GB/s."""
SHORT_REFERENCES: tuple[tuple[str, str, str], ...] = (
    # (benchmark, row id pattern, the reference's short name); first match wins
    ("protocol", r"voucher_sign", "coincurve sign"),
    ("protocol", r"voucher_verify|payee_charge", "coincurve recover"),
    ("protocol", r"statement_sign", "PyNaCl sign"),
    ("protocol", r"statement_verify", "PyNaCl verify"),
    ("protocol", r"manifest_|chunk_", "hashlib sha256"),
    ("edge", r"serve_", "nginx"),
    ("edge", r"stream_rss_growth", "body size"),
    ("edge", r"stream_", "direct from origin"),
    ("edge", r"pages_wire_", "identity bytes"),
    ("edge", r"pages_zstd_cost", "hashlib sha256"),
    ("edge", r"pages_fetch_", "identity fetch"),
    ("sdk", r"fetch_peak_rss", "atlas fetch, 1 MiB"),
    ("sdk", r"fetch_", "curl direct"),
    ("proxy", r"latency_p50", "nginx direct"),
    ("proxy", r".*", "mitmdump"),
    ("torrent", r".*", "plain libtorrent"),
)


@dataclass(frozen=True, slots=True)
class Line:
    benchmark: str
    id: str
    operation: str
    unit: str
    atlas: float
    reference: str
    """Short name of the reference (the report's full description is ``reference_text``)."""
    reference_text: str
    reference_value: float
    ratio: float | None
    """Atlas median / reference median (None when the reference is 0)."""
    goal: str
    met: bool | None
    reps: int


def short_reference(benchmark: str, row_id: str, text: str) -> str:
    for bench, pattern, name in SHORT_REFERENCES:
        if bench == benchmark and re.match(f"(?:{pattern})", row_id):
            return name
    return text.split(",", maxsplit=1)[0][:40]


def lines_of(report: dict[str, Any]) -> list[Line]:
    """The table lines of one benchmark report (rows it could not measure are absent)."""
    benchmark = str(report.get("benchmark", "?"))
    out = []
    for row in report.get("results", []):
        if SKIPPED.fullmatch(row["id"]):
            continue
        atlas, reference = float(row["median"]), float(row["reference_median"])
        short = short_reference(benchmark, row["id"], row["reference"])
        ratio = atlas / reference if reference else None
        out.append(Line(benchmark, row["id"], row["operation"], row["unit"], atlas, short,
                        row["reference"], reference, ratio, row.get("goal") or "",
                        row.get("met"), len(row.get("samples", []))))  # fmt: skip
    return out


def cells(line: Line) -> tuple[str, ...]:
    return (
        line.benchmark,
        line.operation,
        f"{format_value(line.atlas, line.unit)} {line.unit}",
        f"{format_value(line.reference_value, line.unit)} {line.unit} {line.reference}",
        "-" if line.ratio is None else f"{line.ratio:.2f}",
        line.goal or "-",
        verdict(line.met),
        str(line.reps),
    )


def text_table(lines: Sequence[Line]) -> list[str]:
    return table(HEADER, [cells(line) for line in lines], left=LEFT)


def markdown_table(lines: Sequence[Line]) -> list[str]:
    def row(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    aligns = ["---" if i in LEFT else "--:" for i in range(len(HEADER))]
    return [row(HEADER), "|" + "|".join(aligns) + "|", *(row(cells(line)) for line in lines)]


def goal_counts(lines: Sequence[Line]) -> tuple[int, int]:
    """(goals met, goals missed)."""
    met = sum(1 for line in lines if line.met is True)
    return met, sum(1 for line in lines if line.met is False)
