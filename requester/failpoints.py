"""Crash points for tests: SIGKILL this process the Nth time a payment step is reached.

Each durable payment step calls :func:`reached` with its name (``edge.voucher_accepted``,
``payer.open_answered``, ``settle.redeem_sent``, ...). Set in a process's
environment, ``ATLAS_FAILPOINTS="settle.redeem_sent=3"`` makes it kill itself
with SIGKILL the 3rd time that step is reached: no cleanup, no flush, exactly
what a power cut or the OOM killer leaves behind. Several points are separated
by commas. The crash matrix (``tests/crash/``) picks the count at random per
run, which gives the kill its random timing.

The variable is read once, at import. Unset, :func:`reached` is a function that
returns at once. Never set it outside tests.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

ENV = "ATLAS_FAILPOINTS"

POINTS = frozenset({
    # The edge as payee (cdn_edge/payments.py): accepted in memory, then the row's commit.
    "edge.voucher_accepted", "edge.payments_before_commit", "edge.payments_committed",
    # The SDK as payer (requester/payer_store.py, requester/channel_manager.py).
    "payer.voucher_persisted", "payer.open_requested", "payer.open_answered",
    "payer.topup_requested", "payer.topup_answered",
    # The edge's settlement (cdn_edge/settlement.py): each channel's redeem.
    "settle.redeem_sent", "settle.redeem_answered",
    # The embedded ledger (cdn_edge/ledger/store.py): after the call's transaction commits.
    "ledger.redeem_committed", "ledger.open_committed",
    # A TRON transaction (requester/tron/tx_sender.py): journaled, broadcast, receipt read.
    "tron.signed_persisted", "tron.broadcast_sent", "tron.receipt_seen",
})  # fmt: skip
"""Every point the code reaches; a spec naming another is refused (a typo would never fire)."""


def parse(spec: str) -> dict[str, int]:
    """``"a=3,b=1"`` as ``{"a": 3, "b": 1}``; a count is the hit that kills (1 = the first)."""
    armed: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, count = item.partition("=")
        if not sep or name not in POINTS or not count.isdigit() or int(count) < 1:
            raise ValueError(
                f"{ENV}: {item!r} is not POINT=N with N >= 1 and POINT one of {sorted(POINTS)}"
            )
        armed[name] = int(count)
    return armed


class _Armed:
    """Counts the hits of the armed points (any thread) and kills at the chosen one."""

    def __init__(self, armed: dict[str, int]) -> None:
        self._armed = armed
        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()

    def reached(self, point: str) -> None:
        if point not in self._armed:
            return
        with self._lock:
            hits = self._hits[point] = self._hits.get(point, 0) + 1
        if hits == self._armed[point]:
            sys.stderr.write(f"atlas: failpoint {point} reached (hit {hits}): SIGKILL\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def _not_armed(point: str) -> None:
    """No failpoint is set: nothing to count."""


_ARMED = parse(os.environ.get(ENV, ""))
reached: Callable[[str], None] = _Armed(_ARMED).reached if _ARMED else _not_armed
"""Call at a payment step: kills the process if this is the armed hit of ``point``."""
