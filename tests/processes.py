"""Start real Atlas programs as child processes on 127.0.0.1, and stop them.

Every server prints ``{"listening": URL}`` on stdout when ready; tests bind
port 0 and read that line. The fixture that starts a process stops it. The
runner is the launcher's own (launcher/processes.py): each program runs in its
own session and gets SIGTERM if the test process dies.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from launcher import processes

ATLAS = str(Path(sys.executable).with_name("atlas"))
READY_TIMEOUT = 30.0
Running = processes.Process
"""A started program: ``url``, the whole ready line as ``ready`` (a proxy also names its API,
CA and status page), ``proc``, and ``stop(timeout, sig)`` / ``kill9()``."""


def start(args: Sequence[str], env: dict[str, str] | None = None) -> Running:
    """Start ``atlas *args`` and wait for its ready line."""
    return start_program([ATLAS, *args], env)


def start_program(argv: Sequence[str], env: dict[str, str] | None = None) -> Running:
    """Start any program that prints ``{"listening": URL}`` and wait for that line."""
    return processes.start(argv, env=env, ready_timeout=READY_TIMEOUT)


def start_ledger(
    data_dir: Path, *, faucet: bool = True, env: dict[str, str] | None = None
) -> Running:
    args = ["ledger", "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir)]
    return start([*args, "--faucet"] if faucet else args, env)


def start_tron_node(*extra: str) -> Running:
    """``atlas ledger tron-node`` on port 0; its ready line names the contracts it deployed."""
    return start(["ledger", "tron-node", "--host", "127.0.0.1", "--port", "0", *extra])


def start_origin(tls: tuple[Path, Path] | None = None) -> Running:
    """The test origin (tests/origin_server.py) in its own process; HTTPS with (cert, key)."""
    script = Path(__file__).with_name("origin_server.py")
    extra = ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if tls else []
    return start_program([sys.executable, str(script), "--port", "0", *extra])


def start_edge_env(data_dir: Path, ledger_url: str, env: dict[str, str], *extra: str) -> Running:
    """An edge with extra environment (``SSL_CERT_FILE`` to trust a test CA)."""
    args = ["edge", "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir)]
    return start([*args, "--ledger", ledger_url, "--allow-private-origins", *extra], env)


def start_edge(data_dir: Path, ledger_url: str, *extra: str) -> Running:
    args = ["edge", "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir)]
    return start([*args, "--ledger", ledger_url, "--allow-private-origins", *extra])


def start_proxy(home: Path, *extra: str, env: dict[str, str] | None = None) -> Running:
    """``atlas proxy`` on ports 0, using the wallet and config in ``home``."""
    args = ["proxy", "--host", "127.0.0.1", "--port", "0", "--api-port", "0", *extra]
    return start(args, {"ATLAS_HOME": str(home), **(env or {})})
