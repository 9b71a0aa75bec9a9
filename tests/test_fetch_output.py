"""``atlas fetch -o FILE``'s disk work in its worker thread (requester/cli/fetch_output.py).

The sidecar must never count a chunk that is not in ``FILE.part``: here the file system
refuses a write (the file-size limit of the process, EFBIG) in the middle of a batch, and
the sidecar keeps what the last good checkpoint counted while the fetch gets the error.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

CHUNK = 256 * 1024
FILLED = """
import asyncio, json, resource, signal, sys
from pathlib import Path
from requester.cli.fetch_output import PartFile
CHUNK = 256 * 1024
part, sidecar = Path(sys.argv[1]), Path(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (3 * CHUNK + CHUNK // 2, resource.RLIM_INFINITY))

async def main() -> None:
    out = {}
    with part.open("wb") as sink:
        disk = PartFile(sink, sidecar, "http://x", "head", 0)
        disk.write(b"a" * CHUNK)
        disk.write(b"b" * CHUNK)
        await disk.checkpoint()
        out["first"] = json.loads(sidecar.read_text())["chunks_done"]
        try:
            for i in range(6):
                disk.write(bytes([99 + i]) * CHUNK)
            await disk.checkpoint()
        except OSError as exc:
            out["checkpoint"] = exc.errno
        try:
            disk.write(b"z" * CHUNK)
        except OSError as exc:
            out["next_write"] = exc.errno
        out["written"] = disk.close()
    out["claimed"] = json.loads(sidecar.read_text())["chunks_done"]
    print(json.dumps(out))

asyncio.run(main())
"""


def test_a_failed_write_is_raised_and_never_claimed(tmp_path: Path) -> None:
    part, sidecar = tmp_path / "f.bin.part", tmp_path / "f.bin.atlas"
    result = subprocess.run([sys.executable, "-c", FILLED, str(part), str(sidecar)],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["first"] == 2  # the checkpoint before the failure
    assert out["checkpoint"] == out["next_write"] == errno.EFBIG  # the error reaches the loop
    assert out["written"] == 3  # whole chunks in the file: the 4th was cut by the limit
    assert out["claimed"] == 2  # what the failed checkpoint would have claimed is not
    assert part.read_bytes()[: 3 * CHUNK] == b"a" * CHUNK + b"b" * CHUNK + b"c" * CHUNK
