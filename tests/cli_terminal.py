"""Running the real ``atlas`` CLI the way a person does: on a terminal (a pty), or under a
paid local network started by ``atlas up`` (its wallet, edges and ledger)."""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import termios
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.launcher.atlas_up import ATLAS, Up, env, start_up

PAYING = {"ATLAS_FREE_MIB": "0"}
"""Edges charge from the first byte, so a fetch pays."""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclass
class Terminal:
    returncode: int
    screen: str
    """Everything written to the terminal, escape sequences removed, ``\\r`` kept."""
    stdout: str
    """What went to stdout when it was a pipe (empty when stdout was the terminal)."""


def on_terminal(argv: list[str], environ: dict[str, str], *, stdout_pipe: bool = False,
                timeout: float = 120.0, columns: int = 120) -> Terminal:  # fmt: skip
    """Run ``argv`` with stdin and stderr (and stdout, unless ``stdout_pipe``) on a new
    pty of ``columns`` x 40; collect what it draws there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    out = subprocess.PIPE if stdout_pipe else slave
    proc = subprocess.Popen(argv, stdin=slave, stdout=out, stderr=slave, env=environ,
                            start_new_session=True)  # fmt: skip
    os.close(slave)
    drawn = bytearray()
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError as exc:  # EIO: every writer closed the pty
                if exc.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            drawn += data
        piped = proc.stdout.read().decode() if proc.stdout is not None else ""
        code = proc.wait(timeout)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Terminal(code, ANSI.sub("", drawn.decode(errors="replace")), piped)


def atlas_env(data_dir: Path) -> dict[str, str]:
    """The environment of a user of the network ``atlas up`` made in ``data_dir``."""
    return {**env(), "ATLAS_HOME": str(data_dir), "TERM": "xterm-256color", "COLUMNS": "120"}


def atlas(*args: str) -> list[str]:
    return [*ATLAS, *args]


def paying_network(data_dir: Path, edges: int = 2) -> Iterator[Up]:
    """``atlas up`` with edges that charge from byte 0; stopped (SIGTERM) after."""
    up = start_up(data_dir, edges=edges, more_env=PAYING)
    try:
        yield up
    finally:
        up.proc.send_signal(signal.SIGTERM)
        try:
            up.wait()
        except subprocess.TimeoutExpired:
            up.kill_all()
