"""Secret files (the proxy's API token, the wallet, an edge's keys) are 0600 from their
first instant and never written through a file or link already in the directory.

Before: the proxy wrote its token to ``api_token.tmp`` with the default mode and chmodded
it after; the wallet and the edge keys opened ``wallet.tmp`` / ``edge-keys.tmp`` with
``O_TRUNC``, which keeps the mode of a file already there and follows a link.
(requester/secret_file.py)
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from cdn_edge import edge_identity
from proxy.state import load_or_create_token
from requester import keystore
from requester.secret_file import write_secret

Writer = Callable[[Path], Path]
"""Writes one kind of secret into a directory; returns the secret file's path."""


def _token(home: Path) -> Path:
    load_or_create_token(home / "api_token")
    return home / "api_token"


def _wallet(home: Path) -> Path:
    keystore.create(home / "wallet.json", "passphrase", fast=True)
    return home / "wallet.json"


def _edge_keys(home: Path) -> Path:
    edge_identity.load_or_create(home)
    return home / edge_identity.KEY_FILE


def _plain(home: Path) -> Path:
    write_secret(home / "secret", b"s3cret")
    return home / "secret"


WRITERS: dict[str, tuple[Writer, str]] = {
    "proxy api token": (_token, "api_token.tmp"),
    "wallet": (_wallet, "wallet.tmp"),
    "edge keys": (_edge_keys, "edge-keys.tmp"),
    "write_secret": (_plain, "secret.tmp"),
}
"""Each writer and the temporary name the code before this fix wrote through."""


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.parametrize("kind", list(WRITERS))
def test_a_file_or_link_left_at_the_old_temporary_name_is_not_written_through(
    kind: str, tmp_path: Path
) -> None:
    writer, old_tmp = WRITERS[kind]
    home, elsewhere = tmp_path / "home", tmp_path / "readable-by-all"
    home.mkdir()
    elsewhere.write_bytes(b"")
    elsewhere.chmod(0o644)
    (home / old_tmp).symlink_to(elsewhere)
    secret = writer(home)
    assert elsewhere.read_bytes() == b""  # before: the secret went through the link
    assert not secret.is_symlink()
    assert _mode(secret) == 0o600
    assert secret.stat().st_size > 0


@pytest.mark.parametrize("kind", list(WRITERS))
def test_a_secret_file_is_0600_under_a_permissive_umask(kind: str, tmp_path: Path) -> None:
    writer, _ = WRITERS[kind]
    old = os.umask(0o022)
    try:
        secret = writer(tmp_path)
    finally:
        os.umask(old)
    assert _mode(secret) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [secret.name]  # no temporary left


FAILED_WRITE = textwrap.dedent("""
    import os, resource, sys
    from pathlib import Path
    from proxy.state import load_or_create_token
    os.umask(0o022)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))  # writes fail
    try:
        load_or_create_token(Path(sys.argv[1]) / "api_token")
    except OSError as exc:
        print(exc.errno)
""")


def test_the_api_token_is_never_in_a_file_others_can_read(tmp_path: Path) -> None:
    """A write that fails half-way (here: no room, RLIMIT_FSIZE) shows the file as it was
    made: before, the token's file was 0644 until its chmod, and was left so."""
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run([sys.executable, "-c", FAILED_WRITE, str(home)], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "27"  # EFBIG: the write did fail
    assert {p.name: oct(_mode(p)) for p in home.iterdir() if _mode(p) & 0o077} == {}
    assert load_or_create_token(home / "api_token")  # a later start makes it whole
    assert _mode(home / "api_token") == 0o600
