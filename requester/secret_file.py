"""Writing a secret (a key file, the wallet, a token, a passphrase) that only its owner reads.

The bytes go to a new file made with mode 0600 from its first instant (``mkstemp``:
``O_CREAT | O_EXCL`` under a random name, so no file or link already there is written
through and no leftover keeps a wider mode), are flushed to disk, and the file is then
renamed over the target. A reader sees the old file or the whole new one; the secret
never sits in a file with the default mode, not even between a write and a chmod.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_secret(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, readable and writable by this user only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
