"""What a report says about the machine, the tree and the tools it ran with."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import ssl
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from loadtest import REPO


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() in ("model name", "Hardware", "Processor") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def git(*args: str) -> str:
    """``git ARGS``'s output in the repository ("" if git cannot tell)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=10, check=False).stdout  # fmt: skip
    return ""


def tool_version(tool: str) -> str:
    """``TOOL VERSION`` of its Debian package (every system tool a benchmark needs is one,
    installed with apt-get), or why it cannot tell."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", tool], timeout=5,
                                 capture_output=True, text=True, check=False).stdout  # fmt: skip
        if version:
            return f"{tool} {version}"
    return f"{tool} {'unknown' if shutil.which(tool) else 'missing'}"


def version_of(distribution: str) -> str:
    with contextlib.suppress(metadata.PackageNotFoundError):
        return metadata.version(distribution)
    return "unknown"


def run_facts(libs: Sequence[str] = (), tools: Sequence[str] = ()) -> dict[str, Any]:
    """The machine, the date and commit, the load at the start, the tree's uncommitted files
    (the numbers are for this tree, not the commit), and the versions of ``libs`` (Python
    distributions) and ``tools``."""
    status = git("status", "--porcelain", "--untracked-files=no").splitlines()
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git("rev-parse", "--short", "HEAD").strip() or None,
        "openssl": ssl.OPENSSL_VERSION,
        "load_average": os.getloadavg()[0],
        "uncommitted": [line[3:] for line in status if line[3:]],
        **{lib: version_of(lib) for lib in libs},
        **{tool: tool_version(tool) for tool in tools},
    }


def head_lines(facts: dict[str, Any], libs: Sequence[str], tools: Sequence[str]) -> list[str]:
    """The cpu, cores, python, date, tree and libs lines of a report's head."""
    changed = facts["uncommitted"]
    versions = [*(f"{lib} {facts[lib]}" for lib in libs), *(facts[tool] for tool in tools)]
    listed = f" ({', '.join(changed[:6])}{', ...' if len(changed) > 6 else ''})" if changed else ""
    return [
        f"cpu:      {facts['cpu_model']}",
        f"cores:    {facts['cores']} ({facts['usable_cores']} usable)",
        f"python:   {facts['python']} on {facts['platform']}",
        f"date:     {facts['date']}  commit: {facts['git_commit'] or 'unknown'}"
        f"  load average at start: {facts['load_average']:.2f}",
        f"tree:     {len(changed)} tracked files changed since the commit{listed}",
        *([f"libs:     {', '.join(versions)}"] if versions else []),
    ]
