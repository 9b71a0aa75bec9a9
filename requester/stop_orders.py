"""When a server process stops: on SIGINT/SIGTERM alone, on its launcher's order under ``atlas up``.

Run by hand, a ledger, edge or proxy stops on SIGINT or SIGTERM. Started by
``atlas up`` (which sets ``ATLAS_UP_CHILD=1`` in its environment, not on its
command line, so the same command line typed by hand behaves as above), its
stdin is the launcher's control pipe: a ``stop`` line, or the pipe closing
because the launcher is gone, stops it too. The ledger of such a network
*stops last*: signals do not stop it, since a terminal's Ctrl-C or a cgroup's
SIGTERM reaches every process at once and the edges still need the ledger to
redeem what they earned. It stops on the launcher's ``stop`` line, which comes
after the edges have settled; if the launcher dies without one, it gives the
edges :data:`ORPHAN_LINGER` seconds to settle and then stops.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

UP_CHILD_ENV = "ATLAS_UP_CHILD"
STOP_LINE = b"stop\n"
ORPHAN_LINGER = 20.0
"""Seconds a stops-last server keeps serving after its launcher vanished without an order."""


def under_atlas_up() -> bool:
    return os.environ.get(UP_CHILD_ENV) == "1"


class StopOrders:
    """Learns when this process must stop; make it before printing the ready line.

    Signal handlers go in at once, so a signal sent as soon as the ready line is
    read still runs the server's cleanup (an edge redeems there) instead of
    killing the process.
    """

    def __init__(self, *, stops_last: bool = False) -> None:
        self._stop = asyncio.Event()
        self._supervised = under_atlas_up()
        self._hold = self._supervised and stops_last
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._signalled, sig)

    def _signalled(self, sig: signal.Signals) -> None:
        if self._hold:
            print(f"atlas: {sig.name} ignored: under atlas up this server stops last, "
                  "when atlas up says so (after the edges settle)", file=sys.stderr)  # fmt: skip
            return
        self._stop.set()

    async def wait(self) -> None:
        """Return when this process must stop."""
        if not self._supervised:
            await self._stop.wait()
            return
        async with asyncio.TaskGroup() as tasks:
            following = tasks.create_task(self._follow_launcher())
            await self._stop.wait()
            following.cancel()

    async def _follow_launcher(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        try:
            transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
            )
        except (ValueError, OSError) as exc:  # stdin is no pipe: the variable was set by hand
            print(f"atlas: {UP_CHILD_ENV} is set but stdin is no pipe ({exc})", file=sys.stderr)
            self._hold = False
            return
        try:
            while line := await reader.readline():
                if line == STOP_LINE:
                    break
            else:
                if self._hold:  # the launcher died: the edges may still be settling
                    print(f"atlas: atlas up is gone; stopping in {ORPHAN_LINGER:g} s",
                          file=sys.stderr)  # fmt: skip
                    await asyncio.sleep(ORPHAN_LINGER)
        finally:
            transport.close()
        self._stop.set()
