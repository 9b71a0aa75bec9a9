"""The namespace network itself (loadtest/harness/netns.py): hosts reach each other and
nothing else, and every namespace goes when the network does, also on failure; the sweep
deletes only our prefix's leftovers of dead runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from loadtest.harness.netns import PREFIX, Network, ip, sweep_stale, unavailable

TRY_CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], 9), timeout=2)
except OSError as exc:
    print(type(exc).__name__)
"""


@pytest.fixture(autouse=True, scope="module")
def root_only() -> None:
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"no namespace network: {reason}")


def namespaces() -> set[str]:
    return set(ip("netns", "list").split())


def connect(net: Network, host: int, address: str) -> str:
    argv = net.argv(host, [sys.executable, "-c", TRY_CONNECT, address])
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout


def test_hosts_reach_each_other_and_nothing_else() -> None:
    with Network([1, 2]) as net:
        routes = ip("-n", net.hosts[1].namespace, "route", "show").splitlines()
        assert [r.split()[0] for r in routes] == ["10.77.0.0/24"]  # no default route
        assert connect(net, 1, net.address(2)).strip() == "ConnectionRefusedError"  # answered
        assert connect(net, 1, "192.0.2.1").strip() == "OSError"  # ENETUNREACH: no way out
        assert connect(net, 1, "10.77.0.9").strip() in ("TimeoutError", "OSError")  # nobody


def test_every_namespace_is_deleted_by_name_also_on_failure() -> None:
    net = Network([1, 2, 3])
    with pytest.raises(RuntimeError), net:
        made = {net.hub, *(h.namespace for h in net.hosts.values())}
        assert made <= namespaces()
        raise RuntimeError("a test failing inside the network")
    assert not made & namespaces()


def test_the_sweep_deletes_only_our_leftovers_of_dead_runs() -> None:
    dead, alive = f"{PREFIX}999999999-dead-h1", f"{PREFIX}{os.getpid()}-live-h1"
    other = "someone-elses-namespace-999999999"
    for name in (dead, alive, other):
        ip("netns", "add", name)
    try:
        assert dead in sweep_stale()
        left = namespaces()
        assert dead not in left
        assert {alive, other} <= left
    finally:
        for name in (dead, alive, other):
            ip("netns", "del", name, check=False)
