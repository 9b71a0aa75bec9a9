"""Run the fuzz targets under atheris (libFuzzer, coverage-guided): ``make fuzz``.

    python -m tests.fuzz.run --all [--seconds 60] [--only a,b]   every target, a table
    python -m tests.fuzz.run TARGET [--seconds 60]               one target (a child of --all)
    python -m tests.fuzz.run --list

Each target runs in its own process for a fixed time, starting from seeds made from
tests/vectors/ plus the corpus earlier runs kept. An input that breaks the oracle
(tests/fuzz/target.py) is saved once per distinct failure (exception type and the
place it was raised) and fuzzing goes on; a hard crash, a hang over ``-timeout`` or
memory over ``-rss_limit_mb`` is libFuzzer's own artefact. Everything lands under
``fuzz-artifacts/`` (gitignored): corpus/, seeds/, crashes/<target>/, logs/ and
summary.json. Reproduce one input with ``python -m tests.fuzz.run TARGET --replay FILE``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import re
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "fuzz-artifacts"
PROJECT = ("requester", "cdn_edge", "proxy", "tests.fuzz")
LIBFUZZER_OPTIONS = ("-timeout=20", "-rss_limit_mb=3072", "-max_len=24576", "-print_final_stats=1")


def _signature(exc: BaseException) -> str:
    """One failure, wherever its input came from: its type and the project line that raised."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if any(f"/{p.split('.')[0]}/" in f.filename for p in PROJECT)
    ]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    if isinstance(exc, AssertionError):  # one check, many findings: tell them apart by kind
        return f"{type(exc).__name__} at {where}: {re.sub(r'[0-9]+', 'N', str(exc))[:120]}"
    return f"{type(exc).__name__} at {where}"


def fuzz_one(name: str, seconds: int, extra: list[str]) -> None:
    """Child: fuzz one target in this process until libFuzzer stops it."""
    atheris: Any = importlib.import_module("atheris")
    with atheris.instrument_imports(include=list(PROJECT)):
        from tests.fuzz.registry import all_targets
        from tests.fuzz.target import run_one
    t = all_targets()[name]
    corpus, seed_dir, crashes = (
        OUT / "corpus" / name,
        OUT / "seeds" / name,
        OUT / "crashes" / name,
    )
    for folder in (corpus, seed_dir, crashes):
        folder.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(t.seeds()):
        (seed_dir / f"seed-{index:03d}").write_bytes(seed)
    seen: set[str] = set()

    def one_input(data: bytes) -> None:
        try:
            run_one(t, data)
        except Exception as exc:
            signature = _signature(exc)
            if signature in seen:
                return
            seen.add(signature)
            stem = crashes / f"crash-{hashlib.sha1(signature.encode()).hexdigest()[:12]}"
            stem.with_suffix(".input").write_bytes(data)
            stem.with_suffix(".txt").write_text(
                f"{signature}\n\n{''.join(traceback.format_exception(exc))}"
            )
            print(f"ATLAS-CRASH {name}: {signature}: {str(exc)[:200]}", file=sys.stderr, flush=True)

    argv = [
        sys.argv[0],
        str(corpus),
        str(seed_dir),
        f"-max_total_time={seconds}",
        f"-artifact_prefix={crashes}/",
        *LIBFUZZER_OPTIONS,
        *extra,
    ]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def replay(name: str, path: Path) -> None:
    from tests.fuzz.registry import all_targets
    from tests.fuzz.target import run_one

    run_one(all_targets()[name], path.read_bytes())
    print(f"{name}: {path} passes the oracle")


@dataclass
class Outcome:
    target: str
    inputs: int
    seconds: float
    cov: int
    """libFuzzer's coverage count (instrumented edges of the project's Python code)."""
    ft: int
    corpus: int
    crashes: list[str]


_DONE = re.compile(r"Done (\d+) runs in (\d+) second")
_STAT = re.compile(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)(?: corp: (\d+))?")


def fuzz_all(names: list[str], seconds: int) -> int:
    """Parent: each target in a child process; one line per target and a summary file."""
    (OUT / "logs").mkdir(parents=True, exist_ok=True)
    rows: list[Outcome] = []
    print(f"{'target':<18} {'inputs':>10} {'secs':>5} {'cov':>6} {'ft':>6} {'corpus':>6}  crashes")
    for name in names:
        started = time.monotonic()
        log = OUT / "logs" / f"{name}.log"
        with log.open("w") as sink:
            code = subprocess.call(
                [sys.executable, "-m", "tests.fuzz.run", name, "--seconds", str(seconds)],
                cwd=ROOT,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=seconds * 3 + 120,
            )
        text = log.read_text(errors="replace")
        stats = _STAT.findall(text)
        done = _DONE.search(text)
        found = [ln.split(": ", 1)[1] for ln in text.splitlines() if ln.startswith("ATLAS-CRASH")]
        if code != 0 and not found:
            found = [f"libFuzzer stopped with exit {code} (see {log.relative_to(ROOT)})"]
        last = stats[-1] if stats else ("0", "0", "0", "0")
        row = Outcome(
            name,
            int(done[1]) if done else int(last[0]),
            round(time.monotonic() - started, 1),
            int(last[1]),
            int(last[2]),
            int(last[3] or 0),
            found,
        )
        rows.append(row)
        print(
            f"{name:<18} {row.inputs:>10} {row.seconds:>5} {row.cov:>6} {row.ft:>6} "
            f"{row.corpus:>6}  {len(found)}",
            flush=True,
        )
        for crash in found:
            print(f"{'':<18} ! {crash}", flush=True)
    (OUT / "summary.json").write_text(json.dumps([asdict(r) for r in rows], indent=2))
    total = sum(len(r.crashes) for r in rows)
    print(
        f"{len(rows)} targets, {sum(r.inputs for r in rows)} inputs ({seconds} s each), "
        f"{total} distinct crashes; crashes in {OUT.relative_to(ROOT)}/crashes"
    )
    return 1 if total else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", nargs="?")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--only", default="")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--replay", type=Path)
    args, extra = parser.parse_known_args()
    if args.target is not None and args.replay is None:
        fuzz_one(args.target, args.seconds, extra)  # before the targets are imported: see there
        return 0
    from tests.fuzz.registry import all_targets

    if args.list:
        for t in all_targets().values():
            print(f"{t.name:<18} {t.doc}")
        return 0
    if args.all:
        names = [n for n in args.only.split(",") if n] or list(all_targets())
        return fuzz_all(names, args.seconds)
    if args.target is None:
        parser.error("name a target, or --all, or --list")
    replay(args.target, args.replay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
