"""Command-line options and system tools shared by the benchmarks."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path


def new_parser(doc: str | None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)


def add_common(
    parser: argparse.ArgumentParser,
    *,
    reps_help: str,
    quick_help: str = "a seconds-long smoke run",
) -> None:
    """``--quick``, ``--reps N`` and ``--json PATH``."""
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--reps", type=int, help=reps_help)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")


def add_only(parser: argparse.ArgumentParser, parts: Sequence[str]) -> None:
    """``--only PART`` (repeatable)."""
    parser.add_argument(
        "--only",
        action="append",
        choices=parts,
        metavar="PART",
        help=f"run only this part ({', '.join(parts)}); repeatable",
    )


def add_install_deps(parser: argparse.ArgumentParser, tools: str) -> None:
    """``--install-deps``: apt-get install ``tools`` (e.g. "wrk and nginx") when missing."""
    parser.add_argument(
        "--install-deps", action="store_true", help=f"apt-get install {tools} when missing"
    )


def checked_reps(reps: int | None) -> int | None:
    """``--reps`` as given (None when absent); exits when it is below 1."""
    if reps is not None and reps < 1:
        raise SystemExit("--reps must be at least 1")
    return reps


def missing_tools(tools: Sequence[str]) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def refuse_missing(bench: str, missing: Sequence[str]) -> None:
    raise SystemExit(
        f"{bench} needs {' and '.join(missing)} (Debian packages of those names): "
        "apt-get install them, or run with --install-deps"
    )


def apt_install(packages: Sequence[str]) -> None:
    print(f"installing system packages: {' '.join(packages)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env, timeout=600)


def ensure_tools(bench: str, tools: Sequence[str], install: bool) -> None:
    """Exits naming the missing ``tools``, or (with ``install``) apt-get installs them."""
    missing = missing_tools(tools)
    if not missing:
        return
    if not install:
        refuse_missing(bench, missing)
    apt_install(missing)
