"""``python -m loadtest bench`` (``make bench``) when one benchmark cannot run: the others are
still measured, tabled and written down, the failure is named, and the suite exits 1.

The suite runs as a subprocess with a PATH that holds no system tools, so
the edge benchmark refuses to start (it needs wrk and nginx) while the protocol one
(pure Python) runs. The passing case is in test_bench_proxy.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.bench_smoke import ROOT


def test_a_failing_benchmark_is_reported_and_the_others_still_count(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    argv = [sys.executable, "-m", "loadtest", "bench", "--quick"]
    argv += ["--only", "protocol", "--only", "edge", "--reports", str(tmp_path)]
    argv += ["--doc", str(doc)]
    env = {**os.environ, "PATH": str(tmp_path / "empty-bin")}
    result = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "PROBLEM edge: exited 1" in result.stdout
    assert "needs " in (tmp_path / "edge.txt").read_text(encoding="utf-8")
    protocol_rows = [line for line in result.stdout.splitlines() if line.startswith("protocol ")]
    assert len(protocol_rows) == 9  # every protocol rate row, the failure notwithstanding
    text = doc.read_text(encoding="utf-8")
    assert "- `edge`: " in text and "exited" in text
    assert "- `protocol`: " in text
    assert "| protocol | voucher sign (PayerChannel.pay) |" in text
    assert "![throughput" not in text  # no proxy figures, so no plot
    assert not (tmp_path / "performance-throughput.png").exists()
