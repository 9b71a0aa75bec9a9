"""The suite's one table (each Atlas median beside its reference, from every benchmark's
``--json`` report), ``docs/performance.md`` and its plot."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadtest.harness.rows import VERDICT, format_value, size_text

if TYPE_CHECKING:
    from loadtest.harness.suite import BenchRun

HEADER = ("benchmark", "measurement", "Atlas", "reference", "ratio", "goal", "met", "n")
LEFT = (0, 1, 3, 5, 6)
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
    ("sdk", r"cpu_", "curl + nginx"),
    ("sdk", r"fetch_", "curl direct"),
    ("proxy", r"latency_p50", "nginx direct"),
    ("proxy", r".*", "mitmdump"),
    ("torrent", r".*", "plain libtorrent"),
    ("market", r"market_total", "the capacity"),
    ("market", r".*", "the mechanism"),
)
PLOT = "performance-throughput.png"
MARKET_PLOT = "performance-market.png"
EDGES_PLOT = "performance-edges.png"
EDGES_TEXT = (
    "`atlas fetch` of the same cached file (a HIT at the origin edge, full replicas on the "
    "others) with `--edge` lists of 1, 2, 3 and 5 edges, wall time of the whole command "
    "(`loadtest/sdk/`); the dashed line is curl straight from nginx in the same run. A flat "
    "line means the client, not the edges, bounds the rate."
)
MARKET_TEXT = (
    "One edge of 8 MiB/s, 8 slots (2 free), reserve 1 BTT/MiB; ten requesters bidding 1..10 "
    "BTT/MiB and two free ones, each from its own loopback address with 4 chunk requests in "
    "flight (`loadtest/market/`); docs/market.md explains the mechanism."
)
PLOT_TEXT = (
    "One GET per download, timed by curl (`time_total`), the same file from nginx in every "
    "case; Atlas's copy is cached at the edges, so each GET is a `/v1/fetch`, provider "
    "look-ups and paid, verified chunks. Small payloads show each path's fixed cost per "
    "request, large ones its streaming rate."
)
TEMPLATE = Path(__file__).with_name("performance.md.in")
"""The document's prose, its figures as ``str.format`` fields."""
CURVES = (  # (path in the proxy benchmark's sizes part, legend, matplotlib style)
    ("direct", "curl straight from nginx", "s-"),
    ("mitmdump", "curl through plain mitmdump", "^-"),
    ("atlas", "curl through atlas proxy (paid, verified, cached at the edges)", "o-"),
)


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the table: its cells (``HEADER``) and what the document says of it."""

    benchmark: str
    cells: tuple[str, ...]
    reference: str  # the reference's short name
    reference_text: str  # the report's full description of it
    met: bool | None


def lines_of(report: dict[str, Any]) -> list[Line]:
    """The table lines of one benchmark report (rows it could not measure are absent)."""
    benchmark, out = str(report.get("benchmark", "?")), []
    for row in report.get("results", []):
        atlas, reference, unit = float(row["median"]), float(row["reference_median"]), row["unit"]
        short = next((name for bench, pattern, name in SHORT_REFERENCES
                      if bench == benchmark and re.match(f"(?:{pattern})", row["id"])),
                     row["reference"].split(",", maxsplit=1)[0][:40])  # fmt: skip
        cells = (benchmark, row["operation"], f"{format_value(atlas, unit)} {unit}",
                 f"{format_value(reference, unit)} {unit} {short}",
                 f"{atlas / reference:.2f}" if reference else "-", row.get("goal") or "-",
                 VERDICT[row.get("met")], str(len(row.get("samples", []))))  # fmt: skip
        out.append(Line(benchmark, cells, short, row["reference"], row.get("met")))
    return out


def goal_counts(lines: Sequence[Line]) -> tuple[int, int]:
    """(goals met, goals missed)."""
    return sum(line.met is True for line in lines), sum(line.met is False for line in lines)


def checks_of(runs: Sequence[BenchRun], benchmark: str, key: str) -> Any:
    """One figure set of a benchmark's report (``checks[key]``), None if it did not run."""
    reports = [r.report for r in runs if r.benchmark.name == benchmark and r.report is not None]
    return reports[0].get("checks", {}).get(key) if reports else None


@contextlib.contextmanager
def figure(path: Path, title: str, legend: Any = "best") -> Iterator[Any]:
    """The axes of one 8x4.8 in figure, written to ``path`` as PNG when the block ends."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot

    drawing, axes = pyplot.subplots(figsize=(8, 4.8), dpi=100)
    yield axes
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8, loc=legend)
    drawing.tight_layout()
    drawing.savefig(path, format="png", metadata={"Software": None})
    pyplot.close(drawing)


def plot(sizes: dict[str, Any], path: Path, title: str) -> None:
    """Throughput (MB/s, log) by payload size (log) for Atlas and the references, as PNG."""
    with figure(path, title) as axes:
        xs = [int(s) for s in sizes["bytes"]]
        for key, label, style in CURVES:
            axes.plot(xs, sizes["median"][key], style, label=label)
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xticks(xs, [size_text(x) for x in xs])
        axes.set_xlabel("payload size (one GET)")
        axes.set_ylabel(f"throughput, {sizes.get('unit', 'MB/s')} (median)")
        axes.grid(True, which="major", alpha=0.3)


def market_plot(market: dict[str, Any], path: Path, title: str) -> None:
    """The market benchmark's rate by bid, paid lane on free lane, against the mechanism's
    rates, as PNG."""
    with figure(path, title, "center left") as axes:
        xs, paid = range(len(market["bids"])), market["paid_kib_s"]
        axes.bar(xs, paid, label="paid lane (a winning bid's slot)")
        axes.bar(xs, [t - p for t, p in zip(market["kib_s"], paid, strict=True)], bottom=paid,
                 label="free lane (everyone, round-robin)", hatch="//")  # fmt: skip
        for rate, name in ((7168 / 6, "mechanism: winner 7/6 MiB/s"), (1024 / 6, "others 1/6")):
            axes.axhline(rate, linestyle="--", color="gray", linewidth=1)
            axes.annotate(name, (0, rate), (2, 3), textcoords="offset points", fontsize=8)
        axes.set_xticks(list(xs), [f"{b}" for b in market["bids"]])
        axes.set_xlabel(f"bid, BTT/MiB (free: no bid); clearing price {market['clearing']}/MiB")
        axes.set_ylabel("rate, KiB/s (second half of the run)")


def edges_plot(edges: dict[str, Any], path: Path, title: str) -> None:
    """The sdk benchmark's cached ``atlas fetch`` rate by number of edges, against curl from
    nginx, as PNG."""
    with figure(path, title, "center right") as axes:
        xs = [int(k) for k in edges["edges"]]
        axes.plot(xs, edges["median"], "o-", label=f"atlas fetch {size_text(edges['bytes'])}, "
                  "cached (paid, verified)")  # fmt: skip
        axes.axhline(edges["curl"], linestyle="--", color="gray", label="curl from nginx")
        axes.set_xticks(xs, [str(x) for x in xs])
        axes.set_ylim(bottom=0)
        axes.set_xlabel("edges serving the download (--edge)")
        axes.set_ylabel(f"throughput, {edges.get('unit', 'GB/s')} (median)")
        axes.grid(True, which="major", alpha=0.3)


def render(runs: Sequence[BenchRun], lines: Sequence[Line], *, started: str, wall_s: float,
           command: str, load: tuple[float, float], plot_written: bool,
           market: bool = False, edges: bool = False) -> str:  # fmt: skip
    """The whole of ``docs/performance.md``."""
    machines = [dict(r.report.get("machine", {})) for r in runs if r.report is not None]
    machine = machines[0] if machines else {}
    met, missed = goal_counts(lines)
    markdown = [("| " + " | ".join(v.replace("|", "\\|") for v in cells) + " |")
                for cells in (HEADER, *(line.cells for line in lines))]  # fmt: skip
    markdown.insert(1, "|" + "|".join("---" if i in LEFT else "--:" for i in range(8)) + "|")
    notes = [f"- {r.benchmark.name}: {n}" for r in runs if r.report for n in r.report["notes"]]
    plot = (f"\n## Throughput by payload size\n\n![throughput by payload size]({PLOT})\n\n"
            f"{PLOT_TEXT}\n") if plot_written else ""  # fmt: skip
    plot += (f"\n## Throughput by number of edges\n\n![throughput by number of edges]"
             f"({EDGES_PLOT})\n\n{EDGES_TEXT}\n") if edges else ""  # fmt: skip
    plot += (f"\n## Rate by bid on a market edge\n\n![rate by bid]({MARKET_PLOT})\n\n"
             f"{MARKET_TEXT}\n") if market else ""  # fmt: skip
    return TEMPLATE.read_text(encoding="utf-8").format(
        command=command, started=started, commit=(machine.get("git_commit") or "unknown")
        + (" with uncommitted changes" if any(m.get("uncommitted") for m in machines) else ""),
        **{key: machine.get(key, "?") for key in ("cpu_model", "cores", "usable_cores", "python",
                                                   "platform")},
        load_start=load[0], load_end=load[1], minutes=wall_s / 60, met=met, missed=missed,
        table="\n".join(markdown), plot=plot,
        runs="\n".join(f"- `{r.benchmark.name}`: {r.seconds:.0f} s, {r.problem or 'ok'}"
                       for r in runs),
        references="\n".join(dict.fromkeys(f"- {ln.benchmark}, *{ln.reference}*: "
                                            f"{ln.reference_text}" for ln in lines)),
        notes="\n\n## Notes from the benchmarks\n\n" + "\n".join(notes) if notes else "",
    )  # fmt: skip
