"""What a report says about the machine, the tree and the tools it ran with."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import ssl
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("model name", "Hardware", "Processor") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO / "loadtest",
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def uncommitted() -> list[str]:
    """Tracked files with uncommitted changes (the numbers are for this tree, not the commit)."""
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line[3:] for line in result.stdout.splitlines() if line[3:]]


def version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def tool_version(argv: Sequence[str]) -> str:
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return f"{argv[0]} missing"
    text = (result.stdout + result.stderr).strip().splitlines()
    return re.sub(r"\s+Copyright.*", "", text[0]) if text else f"{argv[0]} unknown"


def filesystem_of(path: Path) -> str:
    """Device and type of the mount holding ``path`` (from /proc/mounts)."""
    best = ("", "unknown", "unknown")
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text(encoding="utf-8").splitlines():
            device, mount, kind = line.split()[:3]
            inside = str(path).startswith(mount.rstrip("/") + "/") or str(path) == mount
            if inside and len(mount) >= len(best[0]):
                best = (mount, device, kind)
    return f"{best[1]} {best[2]}"


def machine_facts() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "openssl": ssl.OPENSSL_VERSION,
        "coincurve": version_of("coincurve"),
        "pynacl": version_of("PyNaCl"),
    }


def machine_lines(facts: dict[str, Any], *, load_average: bool = True) -> list[str]:
    """The cpu, cores, python and date lines of a report's head (the date line with the
    load average at the start when ``load_average``)."""
    date = f"date:     {facts['date']}  commit: {facts['git_commit'] or 'unknown'}"
    if load_average:
        date += f"  load average at start: {facts['load_average']:.2f}"
    return [
        f"cpu:      {facts['cpu_model']}",
        f"cores:    {facts['cores']} ({facts['usable_cores']} usable)",
        f"python:   {facts['python']} on {facts['platform']}",
        date,
    ]


def tree_line(changed: Sequence[str]) -> str:
    """The head line naming the tracked files changed since the commit."""
    return (
        f"tree:     {len(changed)} tracked files changed since the commit"
        + (f" ({', '.join(changed[:6])}" if changed else "")
        + (", ...)" if len(changed) > 6 else ")" if changed else "")
    )


def run_facts(workdir: Path) -> dict[str, Any]:
    """The machine facts of an end-to-end benchmark: the machine, the load at its start, the
    tree's uncommitted files and the file system its data dirs are on."""
    return {
        **machine_facts(),
        "load_average": os.getloadavg()[0],
        "uncommitted": uncommitted(),
        "data_dir_filesystem": filesystem_of(workdir),
    }
