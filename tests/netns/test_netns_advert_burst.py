"""A requester reading the adverts of 16 edges at once loses no answer (85b8d65).

Sixteen DHT nodes on host 1 hold 16 adverts of 996 bytes (tests/netns/advert_swarm.py:
what 16 edges put, without 16 edge processes); the requester on host 2 reads all 16,
eight times. When it asked for all of them at once, the nodes' answers came in one burst
that overflowed its UDP receive buffer: the kernel dropped datagrams
(``Udp.RcvbufErrors`` in its namespace) and the lookups missing them ran to their time
limit. With at most 8 gets in flight none is dropped and every call finds all 16.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from launcher import processes
from loadtest import REPO
from loadtest.harness.netns import Network, sweep_stale, unavailable
from tests.netns.lab import Lab

SWARM, REQUESTER, EDGES, CALLS = 1, 2, 16, 8


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"no namespace network: {reason}")
    sweep_stale()
    with Network([SWARM, REQUESTER]) as net:
        yield Lab(net, tmp_path_factory.mktemp("burst"))


def test_the_adverts_of_16_edges_come_back_whole_and_none_is_dropped(lab: Lab) -> None:
    net = lab.net
    argv = [sys.executable, "-m", "tests.netns.advert_swarm", net.address(SWARM), str(EDGES)]
    swarm = processes.start(net.argv(SWARM, argv), cwd=REPO, control_pipe=True)
    try:
        assert swarm.ready["stored"] == EDGES
        held = swarm.ready["ids"]
        assert isinstance(held, list)
        ids = ",".join(held)
        dropped = net.snmp(REQUESTER)["Udp.RcvbufErrors"]
        answer = lab.probe(REQUESTER, "adverts", swarm.url, ids, str(CALLS))
        dropped = net.snmp(REQUESTER)["Udp.RcvbufErrors"] - dropped
    finally:
        swarm.stop()
    print(f"\n{CALLS} calls: {answer}, datagrams dropped: {dropped}")
    assert answer["found"] == [EDGES] * CALLS
    assert dropped == 0
