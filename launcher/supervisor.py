"""The children of ``atlas up``: started apart from the terminal, restarted when they die,
stopped in order.

Each child runs in its own session (:mod:`launcher.processes` starts it), so
Ctrl-C in the terminal (SIGINT to the foreground process group) reaches the
launcher only, and the launcher stops the children in the reverse order of
their stages: the proxy, then the edges (which redeem what they earned), then
the ledger. Its stdin is the launcher's control pipe (requester/stop_orders.py),
so a child also stops when the launcher is gone. A child that dies on its own is
reported on stderr and restarted on the same ports after a growing pause; after
:data:`GIVE_UP_AFTER` quick deaths in a row it is left dead, and that is said.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field
from types import TracebackType

from launcher import processes
from launcher.local_network import HOST, port_free
from requester.errors import SdkError
from requester.stop_orders import STOP_LINE, UP_CHILD_ENV

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
"""Seconds a child has to stop (an edge redeems its vouchers meanwhile) before SIGKILL."""
FIRST_PAUSE = 1.0
LONGEST_PAUSE = 30.0
GIVE_UP_AFTER = 5
STEADY = 60.0
"""A child that ran this long before it died starts its count of quick deaths afresh."""


def say(message: str) -> None:
    print(f"atlas up: {message}", file=sys.stderr, flush=True)


class ChildFailed(SdkError):
    """A child did not become ready; the message says how it ended."""

    status = 500
    code = "child_failed"


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: list[str]
    stage: int
    """Children start stage by stage and stop in the reverse order."""
    ports: tuple[int, ...] = ()
    stops_last: bool = False
    """Stopped by a ``stop`` line on its stdin, not by SIGTERM (the ledger)."""
    env: dict[str, str] = field(default_factory=dict)
    """Set on top of the launcher's environment."""
    no_restart: str | None = None
    """Why a child that dies is left dead (the offline TRON node: its chain dies with it)."""


class Child:
    """One child (run by :mod:`launcher.processes`) and the ready line it printed
    (``{"listening": URL, ...}``); what else it prints on stdout is passed on to stderr,
    named."""

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.process: processes.Process | None = None
        self.ready: dict[str, object] = {}
        self.started = 0.0

    @property
    def url(self) -> str:
        return str(self.ready["listening"])

    async def start(self) -> None:
        """Start it and wait for its ready line."""
        self.started = time.monotonic()
        for port in self.spec.ports:
            if not port_free(port):
                raise ChildFailed(f"cannot listen: {HOST}:{port} is in use")
        # No death signal: the control pipe is how a child learns that the launcher is gone,
        # and the ledger (stops_last) must outlive it while the edges settle.
        self.process = processes.spawn(
            self.spec.argv, name=self.name, env={**self.spec.env, UP_CHILD_ENV: "1"},
            echo=self._pass_on, control_pipe=True, die_with_parent=False,
        )  # fmt: skip
        try:
            self.ready = await self.process.wait_ready_async(READY_TIMEOUT)
        except processes.NotReady as failed:
            raise ChildFailed(str(failed)) from None

    def _pass_on(self, line: str) -> None:
        print(f"{self.name}: {line}", file=sys.stderr, flush=True)

    async def ended(self) -> str:
        """Wait for the process to end (passing on what it prints); how it ended."""
        assert self.process is not None
        return processes.describe_exit(await self.process.wait_async())

    async def stop(self) -> None:
        """Order it to stop (SIGTERM, or the ledger's ``stop`` line); SIGKILL if it lingers."""
        if self.process is None or self.process.returncode is not None:
            return
        await self.process.stop_async(
            STOP_TIMEOUT, stop_line=STOP_LINE.decode() if self.spec.stops_last else None,
            lingers=lambda: say(f"{self.name} did not stop within {STOP_TIMEOUT:g} s; killing it"),
        )  # fmt: skip


class Supervisor:
    """Owns the children: starts them, watches each, stops them all in stage order on exit.

    ``stopping`` is the launcher's stop request: once it is set, a child that
    ends is not restarted (a cgroup-wide SIGTERM ends some before the launcher
    gets to stop them).
    """

    def __init__(self, stopping: asyncio.Event) -> None:
        self._stopping = stopping
        self._children: list[Child] = []
        self._watchers: dict[Child, asyncio.Task[None]] = {}
        self._tasks = asyncio.TaskGroup()

    async def __aenter__(self) -> Supervisor:
        await self._tasks.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop_all()  # every watcher has ended: the group exits at once
        await self._tasks.__aexit__(None, None, None)  # and ``exc`` propagates unwrapped

    async def start(self, spec: ChildSpec) -> Child:
        """Start a child, wait until it is ready, and watch it from then on."""
        child = Child(spec)
        self._children.append(child)
        try:
            await child.start()
        except ChildFailed as failed:
            raise ChildFailed(f"{spec.name} {failed}") from None
        self._watchers[child] = self._tasks.create_task(self._watch(child))
        return child

    async def stop_all(self) -> None:
        """Stop every child, the highest stage first; a stage's children stop together."""
        for stage in sorted({c.spec.stage for c in self._children}, reverse=True):
            group = [c for c in self._children if c.spec.stage == stage]
            for child in group:
                if watcher := self._watchers.pop(child, None):
                    watcher.cancel()
                    await asyncio.wait({watcher})
            await asyncio.gather(*(child.stop() for child in group))

    async def _watch(self, child: Child) -> None:
        quick_deaths = 0
        how = await child.ended()
        while not self._stopping.is_set():
            quick_deaths = quick_deaths + 1 if time.monotonic() - child.started < STEADY else 1
            assert child.process is not None
            what = f"{child.name} (pid {child.process.pid}) {how}"
            if child.spec.no_restart:
                say(f"{what}; not restarting it: {child.spec.no_restart}")
                return
            if quick_deaths >= GIVE_UP_AFTER:
                say(f"{what}, {quick_deaths} times in a row within {STEADY:g} s of starting; "
                    "not restarting it again (the rest of the network keeps running)")  # fmt: skip
                return
            pause = min(FIRST_PAUSE * 2 ** (quick_deaths - 1), LONGEST_PAUSE)
            say(f"{what}; restarting it in {pause:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
                return
            try:
                await child.start()
            except ChildFailed as failed:
                how = str(failed)
                continue
            say(f"{child.name} is back (pid {child.process.pid}) on {child.url}")
            how = await child.ended()
