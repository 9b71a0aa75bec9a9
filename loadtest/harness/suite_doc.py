"""``docs/performance.md`` and its plot, written from one suite run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadtest.harness.rows import size_text
from loadtest.harness.suite_table import Line, goal_counts, markdown_table

if TYPE_CHECKING:
    from loadtest.harness.suite import BenchRun

PLOT_NAME = "performance-throughput.png"
CURVES = (
    # (path in bench_proxy's sizes part, legend, matplotlib style)
    ("direct", "curl straight from nginx", "s-"),
    ("mitmdump", "curl through plain mitmdump", "^-"),
    ("atlas", "curl through atlas proxy (paid, verified, cached at the edges)", "o-"),
)


def throughput_by_size(runs: Sequence[BenchRun]) -> dict[str, Any] | None:
    """bench_proxy's ``sizes`` figures, if that part ran."""
    for run in runs:
        if run.benchmark.name == "proxy" and run.report is not None:
            sizes = run.report.get("checks", {}).get("sizes")
            if isinstance(sizes, dict) and sizes.get("bytes"):
                return sizes
    return None


def plot(sizes: dict[str, Any], path: Path, title: str) -> None:
    """Throughput (MB/s, log) by payload size (log) for Atlas and the references, as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 4.8), dpi=100)
    xs = [int(s) for s in sizes["bytes"]]
    for key, label, style in CURVES:
        axes.plot(xs, sizes["median"][key], style, label=label)
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xticks(xs, [size_text(x) for x in xs])
    axes.set_xlabel("payload size (one GET)")
    axes.set_ylabel(f"throughput, {sizes.get('unit', 'MB/s')} (median)")
    axes.set_title(title, fontsize=10)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})
    pyplot.close(figure)


def render(
    runs: Sequence[BenchRun],
    lines: Sequence[Line],
    *,
    started: str,
    wall_s: float,
    command: str,
    load: tuple[float, float],
    plot_written: bool,
) -> str:
    machines = [dict(r.report.get("machine", {})) for r in runs if r.report is not None]
    machine = machines[0] if machines else {}
    met, missed = goal_counts(lines)
    out = [
        "# Performance",
        "",
        f"Written by `{command}` on {started} (UTC). Every figure below was measured in that",
        "one run, each Atlas median beside a reference measured in the same run on the same",
        "machine: nginx serving the same files, curl straight from the origin, plain mitmdump,",
        "a plain libtorrent client, hashlib, and the signature primitives alone. The machine is",
        "shared and noisy, so read the ratios rather than the absolute numbers.",
        "",
        "## How to reproduce",
        "",
        "```sh",
        "make bench            # every benchmark (about 10 minutes on 2 cores), then this file",
        ".venv/bin/python -m loadtest bench --only proxy --no-doc   # one benchmark",
        "```",
        "",
        "`make bench` runs `python -m loadtest bench`, which runs each benchmark as",
        "its own process (all servers are its children on 127.0.0.1, stopped by PID), prints",
        "the table, and rewrites this file and its plot. Each benchmark's own report, with",
        "every sample and its notes, is kept under `loadtest/reports/bench-*/`;",
        "`loadtest/README.md` says what each row measures.",
        "",
        "## Machine",
        "",
        f"- CPU: {machine.get('cpu_model', '?')}, {machine.get('cores', '?')} cores "
        f"({machine.get('usable_cores', '?')} usable)",
        f"- {machine.get('python', '?')} on {machine.get('platform', '?')}",
        f"- commit {machine.get('git_commit') or 'unknown'}"
        + (" with uncommitted changes" if any(m.get("uncommitted") for m in machines) else ""),
        f"- load average {load[0]:.2f} at the start, {load[1]:.2f} at the end; "
        f"the suite took {wall_s / 60:.1f} min",
        "",
        "## Results",
        "",
        f"Medians; `ratio` = Atlas ÷ reference (for rates above 1 is faster, for times and "
        f"sizes above 1 is more); `n` = repetitions. Goals from the issues: {met} met, "
        f"{missed} missed.",
        "",
        *markdown_table(lines),
        "",
    ]
    if plot_written:
        out += [
            "## Throughput by payload size",
            "",
            f"![throughput by payload size]({PLOT_NAME})",
            "",
            "One GET per download, timed by curl (`time_total`), the same file from nginx in "
            "every case; Atlas's copy is cached at the edges, so each GET is a `/v1/fetch`, "
            "provider look-ups and paid, verified chunks. Small payloads show each path's "
            "fixed cost per request, large ones its streaming rate.",
            "",
        ]
    out += [
        "## Load and saturation",
        "",
        "How many users one edge and one proxy carry before p95 latency doubles, what they "
        "answer when overloaded and whether memory returns to its baseline is measured with "
        "locust, not here: `make loadtest LOADTEST_ARGS=--sweep`, figures in "
        "[loadtest/README.md](../loadtest/README.md#saturation-sweep---sweep).",
        "",
        "## Benchmarks in this run",
        "",
    ]
    out += [f"- `{r.benchmark.script}`: {r.seconds:.0f} s, {r.problem or 'ok'}" for r in runs]
    out += ["", "## References", ""]
    seen: set[tuple[str, str]] = set()
    for line in lines:
        key = (line.benchmark, line.reference_text)
        if key not in seen:
            seen.add(key)
            out.append(f"- {line.benchmark}, *{line.reference}*: {line.reference_text}")
    notes = [(r.benchmark.name, n) for r in runs if r.report for n in r.report.get("notes", [])]
    if notes:
        out += ["", "## Notes from the benchmarks", ""]
        out += [f"- {name}: {note}" for name, note in notes]
    return "\n".join(out) + "\n"
