"""N libtorrent DHT nodes on one host holding N node adverts, as a program of its own.

    python -m tests.netns.advert_swarm HOST N

The nodes listen on HOST (ports of their own), know each other and no one else, and put
one 996-byte advert each (a fresh key, valid an hour) before the program prints its
ready line, ``{"listening": "HOST:PORT", "ids": [hex, ...]}`` (the first node's address).
It then runs until stdin closes or SIGTERM: what a network of that many edges holds in
the DHT, without the cost of that many edge processes.
"""

from __future__ import annotations

import json
import secrets
import sys
import time

import libtorrent as lt

from requester.dht_keys import put_advert
from requester.protocol import BTT_LOCAL, LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT, PaymentDomain
from requester.protocol.identity import NodeKey, PayerKey
from requester.protocol.node_advert import MAX_ADVERT_URL, Market, NodeAdvert

PUT_TIMEOUT = 20.0


def advert(key: NodeKey) -> NodeAdvert:
    """996 bytes, the most a BEP 44 value holds (two long URLs and a tunnel URL)."""
    now, long = int(time.time()), MAX_ADVERT_URL - 9
    urls = ("http://a/" + "x" * long, "http://b/" + "y" * long)

    def made(tunnel: str) -> NodeAdvert:
        return NodeAdvert.create(
            key, issued_at=now, expires_at=now + 3600, payee=PayerKey(bytes(31) + b"\1").address,
            asset=BTT_LOCAL, domain=PaymentDomain(LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT),
            market=Market(1000, 1000, 0, 0, 0, 0, 0), http_urls=urls, tunnel_url=tunnel,
        )  # fmt: skip

    return made("http://t/" + "z" * (996 - len(made("http://t/").encode())))


def node(host: str) -> lt.session:
    return lt.session({
        "enable_dht": True, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "listen_interfaces": f"{host}:0", "dht_bootstrap_nodes": "",
        "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
        "dht_upload_rate_limit": 1 << 20, "dht_block_ratelimit": 1000,
        "alert_mask": lt.alert.category_t.dht_notification,
    })  # fmt: skip


def main(host: str, count: int) -> None:
    nodes = [node(host) for _ in range(count)]
    for one in nodes:
        for other in nodes:
            if other is not one:
                one.add_dht_node((host, other.listen_port()))
    time.sleep(1)  # the nodes' pings answered: each knows the others
    keys = [NodeKey(secrets.token_bytes(32)) for _ in nodes]
    for one, key in zip(nodes, keys, strict=True):
        put_advert(one, key, advert(key))
    stored, deadline = 0, time.monotonic() + PUT_TIMEOUT
    while stored < count and time.monotonic() < deadline:
        for one in nodes:
            stored += sum(isinstance(a, lt.dht_put_alert) for a in one.pop_alerts())
        time.sleep(0.05)
    ready = {"listening": f"{host}:{nodes[0].listen_port()}", "stored": stored,
             "ids": [k.node_id.raw.hex() for k in keys]}  # fmt: skip
    print(json.dumps(ready), flush=True)
    sys.stdin.read()  # until the runner closes it (or SIGTERM ends the process)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
