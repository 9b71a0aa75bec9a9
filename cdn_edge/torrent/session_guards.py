"""What the edge's libtorrent session applies when it starts, beside its settings: no
dialling of private addresses, rate limits that bind every peer, and libtorrent's threads
below the event loop's priority."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import libtorrent as lt

__all__ = [
    "BULK_NICE",
    "all_in_global_class",
    "private_peers_filter",
    "thread_ids",
    "yield_to_requests",
]

BULK_NICE = 10
"""How much nicer libtorrent's threads are than the event loop's: the loop gets ~9/10 of a
core against each of them when both want one."""
PRIVATE_RANGES = (
    ("0.0.0.0", "0.255.255.255"),  # noqa: S104 (a range to block, not an address to bind)
    ("10.0.0.0", "10.255.255.255"),
    ("100.64.0.0", "100.127.255.255"),
    ("127.0.0.0", "127.255.255.255"),
    ("169.254.0.0", "169.254.255.255"),
    ("172.16.0.0", "172.31.255.255"),
    ("192.0.0.0", "192.0.0.255"),
    ("192.168.0.0", "192.168.255.255"),
    ("198.18.0.0", "198.19.255.255"),
    ("224.0.0.0", "255.255.255.255"),
    ("::", "::ffff:ffff:ffff"),  # unspecified, loopback, IPv4-compatible and -mapped
    ("fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ("fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ("ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
)
"""Peers an edge never dials unless ``allow_private_peers``: its own host and LAN."""


def private_peers_filter() -> lt.ip_filter:
    """A filter blocking :data:`PRIVATE_RANGES` (applied unless ``allow_private_peers``)."""
    blocked = lt.ip_filter()
    for first, last in PRIVATE_RANGES:
        blocked.add_rule(first, last, 1)
    return blocked


def all_in_global_class() -> lt.ip_filter:
    """Every peer in libtorrent's global peer class, which the session's rate limits bind:
    by default LAN and loopback peers go to its local class instead, which no limit binds,
    so a market edge seeded to them at any speed (tests/market/test_market_contention.py)."""
    everyone = lt.ip_filter()
    flags = 1 << lt.session.global_peer_class_id
    everyone.add_rule("0.0.0.0", "255.255.255.255", flags)  # noqa: S104 (a range, not a bind)
    everyone.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", flags)
    return everyone


def thread_ids() -> set[int]:
    """This process's threads (Linux); empty where /proc is missing."""
    try:
        return {int(task.name) for task in Path("/proc/self/task").iterdir()}
    except OSError:
        return set()


def yield_to_requests(threads: set[int]) -> None:
    """Lower the CPU priority of libtorrent's threads (``threads``: those the session's
    constructor started; the disk and hashing threads they start later inherit it).

    A first fetch runs libtorrent flat out once the first piece is in, and on a busy
    machine its threads took the cores from the event loop that hands that piece to
    the chunker and answers the requester (issue 18, /proc/thread-self/schedstat: the
    loop ran 6 ms and waited 74 ms to run in the 109 ms before the first chunk went
    out). The download only runs ahead of what the loop consumes, so it loses nothing
    by yielding. Linux nice values are per thread; elsewhere this does nothing.
    """
    nice = min(19, os.getpriority(os.PRIO_PROCESS, 0) + BULK_NICE)  # the loop's thread + 10
    for tid in threads:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), nice))
