"""The one ``main`` of every benchmark (``python -m loadtest run NAME``): flags,
configuration, system tools, a workspace, the parts, the text report and ``--json``.

A benchmark module declares ``SPEC``, a :class:`Bench` whose ``measure`` is an ``async``
body that measures into a :class:`Run`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import inspect
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import aiohttp

from loadtest.harness.children import Processes, workspace
from loadtest.harness.machine import head_lines, run_facts
from loadtest.harness.rows import Row, measurement_table, references

Part = Callable[[], Awaitable[list[Row]] | list[Row]]
"""A part of a benchmark: measures and returns its rows (a coroutine function, or not)."""


class Config(Protocol):
    """What the skeleton reads of a benchmark's configuration (a frozen dataclass)."""

    @property
    def mode(self) -> str: ...


C = TypeVar("C", bound=Config)


@dataclass(frozen=True)
class Option:
    """A benchmark's own flag: a number in ``low``..``high`` that, times ``scale``, sets one
    integer field of its configuration."""

    flag: str
    field: str
    help: str
    low: float
    high: float = float("inf")
    scale: float = 1


@dataclass(frozen=True)
class Bench(Generic[C]):
    name: str  # the report's ``benchmark`` (the suite's ``--only`` name)
    title: str  # first line of the text report
    doc: str | None  # the module's docstring: ``--help`` shows its first line
    full: C
    quick: C
    mode: Callable[[C], str]  # the mode line after the mode's name
    measure: Callable[[Run[C]], Awaitable[None]]
    parts: tuple[str, ...] = ()  # ``--only`` choices, in the order they run
    reps_fields: tuple[str, ...] = ("reps",)  # the configuration fields ``--reps N`` sets
    reps_help: str = "repetitions of each part"
    tools: tuple[str, ...] = ()
    """System tools (Debian packages of those names) it needs: refused when missing unless
    ``--install-deps``; their versions head the report."""
    libs: tuple[str, ...] = ()  # Python distributions whose versions head the report
    options: tuple[Option, ...] = ()


@dataclass
class Run(Generic[C]):
    """One run of a benchmark, handed to its body, and what it measured."""

    cfg: C
    args: argparse.Namespace
    workdir: Path
    procs: Processes
    facts: dict[str, Any]  # written as the report's ``machine``; the body may add to it
    head: list[str] = field(default_factory=list)  # head lines after the mode line
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    """Counts behind the rows (requests refused, vouchers accepted, ...) for ``--json``."""
    sections: dict[str, list[str]] = field(default_factory=dict)  # tables after the main one
    failed: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def fail(self, name: str, exc: Exception) -> None:
        """Record that ``name`` failed with ``exc`` (its traceback goes to stderr)."""
        traceback.print_exc()
        self.failed.append(name)
        self.notes.append(f"{name}: FAILED: {type(exc).__name__}: {exc}")

    async def parts(self, parts: Mapping[str, Part]) -> None:
        """The parts chosen with ``--only`` (all by default), each in its own try: one
        failing does not hide the others. The time from the start to here is the setup's."""
        self.notes.append(f"setup: took {time.perf_counter() - self.started:.1f} s")
        for name, part in parts.items():
            if name not in (getattr(self.args, "only", None) or parts):
                continue
            started = time.perf_counter()
            try:
                rows = part()
                self.rows += await rows if inspect.isawaitable(rows) else rows
            except Exception as exc:
                self.fail(name, exc)
            self.notes.append(f"{name}: took {time.perf_counter() - started:.1f} s")


def client_session() -> aiohttp.ClientSession:
    """An HTTP client without a total timeout (a part may stream for minutes)."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(connect=10, sock_read=60))


def parse_args(bench: Bench[Any], argv: Sequence[str] | None) -> argparse.Namespace:
    about = (bench.doc or "").strip().split("\n")[0]
    parser = argparse.ArgumentParser(f"python -m loadtest run {bench.name}", description=about)
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--reps", type=int, help=bench.reps_help)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    if bench.parts:
        only = f"run only this part ({', '.join(bench.parts)}); repeatable"
        parser.add_argument("--only", action="append", choices=bench.parts, help=only)
    if bench.tools:
        tools = " and ".join(", ".join(bench.tools).rsplit(", ", 1))
        parser.add_argument("--install-deps", action="store_true",
                            help=f"apt-get install {tools} when missing")  # fmt: skip
    for option in bench.options:
        parser.add_argument(option.flag, dest=option.field, type=float, help=option.help)
    return parser.parse_args(argv)


def configure(bench: Bench[C], args: argparse.Namespace) -> C:
    cfg = bench.quick if args.quick else bench.full
    if args.reps is not None:
        if args.reps < 1:
            raise SystemExit("--reps must be at least 1")
        cfg = dataclasses.replace(cfg, **dict.fromkeys(bench.reps_fields, args.reps))  # type: ignore[type-var]
    for option in bench.options:
        value = getattr(args, option.field)
        if value is None:
            continue
        if not option.low <= value <= option.high:
            raise SystemExit(f"{option.flag} must be in {option.low:g}..{option.high:g}")
        cfg = dataclasses.replace(cfg, **{option.field: int(value * option.scale)})  # type: ignore[type-var]
    return cfg


def ensure_tools(name: str, tools: Sequence[str], install: bool) -> None:
    """Exits naming the missing ``tools``, or (with ``install``) apt-get installs them."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing and not install:
        raise SystemExit(
            f"{name} needs {' and '.join(missing)} (Debian packages of those names): "
            "apt-get install them, or run with --install-deps"
        )
    if missing:
        print(f"installing system packages: {' '.join(missing)}", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env,
                       timeout=600)  # fmt: skip


def bench_main(bench: Bench[C], argv: Sequence[str] | None) -> int:
    """Runs ``bench.measure`` once in a fresh workspace with every child stopped at the end,
    prints the report and writes ``--json``; 1 if a part failed."""
    args = parse_args(bench, argv)
    cfg = configure(bench, args)
    ensure_tools(bench.name, bench.tools, bool(getattr(args, "install_deps", False)))
    started = time.perf_counter()
    with workspace(f"atlas-bench-{bench.name}-") as workdir:
        facts = run_facts(bench.libs, bench.tools)
        run = Run(cfg, args, workdir, Processes(workdir), facts)
        asyncio.run(_measure(bench.measure, run))
    elapsed = time.perf_counter() - started
    out = [bench.title, *head_lines(facts, bench.libs, bench.tools)]
    out += [f"mode:     {cfg.mode}, {bench.mode(cfg)}", *run.head, "", *measurement_table(run.rows)]
    for title, lines in run.sections.items():
        out += ["", f"{title}:", *(f"  {line}" for line in lines)]
    out += ["", "references:", *references(run.rows), "", "notes:"]
    print("\n".join([*out, *(f"  {note}" for note in run.notes)]))
    print(f"wall time: {elapsed:.1f} s")
    if args.json is not None:
        report = {
            "benchmark": bench.name,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": facts,
            "config": dataclasses.asdict(cfg),  # type: ignore[call-overload]
            "wall_time_s": elapsed,
            **{key: getattr(run, key) for key in ("failed", "notes", "checks", "sections")},
            "results": [row.json() for row in run.rows],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 1 if run.failed else 0


async def _measure(body: Callable[[Run[C]], Awaitable[None]], run: Run[C]) -> None:
    try:
        await body(run)
    except Exception as exc:
        run.fail("setup", exc)
    finally:
        run.procs.close()
        run.notes.extend(f"WARNING: {line}" for line in run.procs.bad_exits)
