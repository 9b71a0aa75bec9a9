"""A requester's view of the DHT, as its own program on one host of a namespace network.

    python -m loadtest.dht.probe edges BOOTSTRAP          # JSON: [{url, node_id}, ...]
    python -m loadtest.dht.probe providers BOOTSTRAP CID  # JSON: [url, ...]
    python -m loadtest.dht.probe watch BOOTSTRAP SECONDS  # JSON lines, then a summary
    python -m loadtest.dht.probe adverts BOOTSTRAP ID,... N  # JSON: found, seconds per call

It runs :class:`requester.discovery.Discovery` (a read-only, DHT-only libtorrent session
bootstrapping from ``BOOTSTRAP`` alone, private addresses allowed). ``watch`` loops for
``SECONDS``: each round is one rendezvous lookup (``get_peers``) and one lookup of the
adverts of every edge seen so far (an edge's node id is read once from its
``/v1/info``). It prints ``{"listening": "probe"}`` once bootstrapped (a runner's ready
line), a line when an address is first listed and when its advert is first verified
and one per round (times on the machine's monotonic clock, the same in every
namespace), and a summary.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence

import aiohttp

from requester.dht_nodes import parse_nodes
from requester.discovery import Discovery
from requester.protocol import NodeId
from requester.protocol.dht import RENDEZVOUS_TARGET

LISTEN = "0.0.0.0:0"
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=3)


def say(line: dict[str, object]) -> None:
    print(json.dumps(line), flush=True)


async def node_id(http: aiohttp.ClientSession, url: str) -> NodeId | None:
    try:
        async with http.get(f"{url}/v1/info", timeout=HTTP_TIMEOUT) as answer:
            return NodeId(bytes.fromhex(str((await answer.json())["node_id"])))
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError):
        return None


async def watch(dht: Discovery, http: aiohttp.ClientSession, seconds: float) -> None:
    ids: dict[str, NodeId] = {}
    verified: set[str] = set()
    rounds = adverts_asked = adverts_found = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        for host, port in await dht.peers(RENDEZVOUS_TARGET):
            url = f"http://{host}:{port}"
            if url not in ids and (found := await node_id(http, url)) is not None:
                ids[url] = found
                say({"event": "listed", "url": url, "t": time.monotonic()})
        adverts = await dht.adverts(list(ids.values()))
        rounds, adverts_asked = rounds + 1, adverts_asked + len(ids)
        adverts_found += len(adverts)
        say({"event": "round", "t": time.monotonic(), "asked": len(ids), "found": len(adverts)})
        for advert in adverts:
            url = next(u for u, i in ids.items() if i == advert.node_id)
            if url not in verified:
                verified.add(url)
                say({"event": "advert", "url": url, "t": time.monotonic()})
    took = time.monotonic() - started
    say({"event": "summary", "seconds": took, "rounds": rounds, "adverts_asked": adverts_asked,
         "adverts_found": adverts_found, "edges": len(verified)})  # fmt: skip


async def main(command: str, bootstrap: str, rest: Sequence[str]) -> None:
    async with (
        aiohttp.ClientSession() as http,
        Discovery(parse_nodes(bootstrap), http, allow_private=True, listen=LISTEN) as dht,
    ):
        if command == "edges":
            found = await dht.edges()
            say({"edges": [{"url": f.url, "node_id": f.advert.node_id.hex()} for f in found]})
        elif command == "providers":
            say({"providers": await dht.providers(bytes.fromhex(rest[0]))})
        elif command == "adverts":
            ids = [NodeId(bytes.fromhex(i)) for i in rest[0].split(",")]
            counts, seconds = [], []
            for _ in range(int(rest[1])):
                started = time.monotonic()
                counts.append(len(await dht.adverts(ids)))
                seconds.append(time.monotonic() - started)
            say({"found": counts, "seconds": seconds})
        else:
            say({"listening": "probe"})
            await watch(dht, http, float(rest[0]))


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("edges", "providers", "adverts", "watch"):
        raise SystemExit(__doc__)
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
