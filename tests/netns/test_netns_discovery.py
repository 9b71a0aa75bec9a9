"""Discovery across hosts (issue 17): each program on its own host of a namespace network
(tests/netns/lab.py), on 10.77.0.0/24 with no route anywhere else.

Host 3 fetches a URL and the origin is stopped: from then on only host 3 holds it. The
requester on host 5 knows one DHT address and nothing else (no ``--edge``, no config,
no tracker), and ``atlas fetch`` finds the content there; with the bootstrap host dead it
still does through host 2 (other edges asked for a chunk may replicate it from host 3
during the download, as any edge does). Edges keeping the private-address filter are
never seen, and a fetch bootstrapping from one fails with a clear message.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns.lab import EDGES, REQUESTER, Lab, dht_of
from tests.origin_server import pattern

SIZE = 600_000
"""Three chunks of 256 KiB: a download served by host 3 alone shows as 3 chunks there."""
FOUND_WITHIN = 10.0


@pytest.fixture(scope="module")
def held(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(url, content id) of content only host 3 holds: it fetched it, then the origin went."""
    assert lab.origin is not None
    url = f"{lab.origin.url}/bytes/{SIZE}?max-age=3600&t=netns"
    out = tmp_path_factory.mktemp("held") / "h3.bin"
    done = lab.fetch(3, url, "--edge", lab.edges[3].url, "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    lab.origin.stop()
    yield url, json.loads(done.stdout)["content_id"]


def verified(path: Path) -> bool:
    return hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(pattern(0, SIZE)).digest()


def test_host_5_fetches_what_only_host_3_holds_found_through_the_dht(
    lab: Lab, held: tuple[str, str], tmp_path: Path
) -> None:
    url, cid = held
    bootstrap, holder = dht_of(lab.edges[1]), lab.edges[3].url
    started = time.monotonic()
    while (providers := lab.probe(REQUESTER, "providers", bootstrap, cid)["providers"]) != [holder]:
        assert time.monotonic() - started < FOUND_WITHIN, f"providers found: {providers}"
        time.sleep(0.5)
    print(f"\nhost 3 found by content through the DHT in {time.monotonic() - started:.2f} s")

    out = tmp_path / "h5.bin"
    done = lab.fetch(REQUESTER, url, "--bootstrap", bootstrap, "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    assert verified(out)
    summary = json.loads(done.stdout)["providers"]
    assert holder in summary  # listed through the rendezvous: there was no --edge
    assert set(summary) <= {edge.url for edge in lab.edges.values()}
    assert sum(int(p["chunks"]) for p in summary.values()) == 3  # others hold replicas of 3's


def test_a_fetch_bootstrapping_through_host_2_works_after_the_bootstrap_host_died(
    lab: Lab, held: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = held
    everyone, started = {lab.edges[h].url for h in EDGES}, time.monotonic()
    while lab.listed(dht_of(lab.edges[2])) != everyone:
        assert time.monotonic() - started < FOUND_WITHIN, "host 2 never listed every edge"
        time.sleep(0.5)  # the network has formed: host 2 knows the others, not just host 1
    lab.edges[1].kill9()
    lab.net.unplug(1)  # the whole host is gone: packets to it vanish, nothing refuses them
    out = tmp_path / "h5.bin"
    started = time.monotonic()
    done = lab.fetch(REQUESTER, url, "--bootstrap", dht_of(lab.edges[2]), "-o", str(out),
                     "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert verified(out)
    assert lab.edges[1].url not in json.loads(done.stdout)["providers"]
    print(f"\nfetched through host 2 in {time.monotonic() - started:.2f} s, host 1 dead")


def test_edges_keeping_the_private_address_filter_are_never_found(lab: Lab) -> None:
    """Without --dht-allow-private (nor --allow-private-origins) an edge's filter drops
    every DHT node on 10.77.0.0/24: edges 6 and 7 keep it (both bootstrap from host 2).
    Neither is ever listed, and a fetch knowing only edge 6 finds no edge."""
    lab.edge(6, 7, bootstrap=dht_of(lab.edges[2]), extra=())
    six, seven = lab.edges[6], lab.edges[7]
    bootstrap = dht_of(six)
    done = lab.fetch(REQUESTER, "http://10.77.0.11/bytes/10", "--bootstrap", bootstrap)
    assert done.returncode == 1, done.stderr
    assert f"no edge with a valid advert found through the DHT at {bootstrap}" in done.stderr
    assert "Traceback" not in done.stderr
    urls = lab.listed(dht_of(lab.edges[2]))
    assert lab.edges[2].url in urls
    assert not {six.url, seven.url} & urls
