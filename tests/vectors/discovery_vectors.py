"""The discovery vectors (discovery.json): node adverts, BEP 44 keys and DHT targets.

Imported by generate.py, which writes the file; tests/protocol/test_discovery_vectors.py
checks the code against it without importing this module.
"""

from __future__ import annotations

from typing import Any

from requester.protocol import (
    BTT,
    BTT_LOCAL,
    LOCAL_CHAIN_ID,
    LOCAL_LEDGER_CONTRACT,
    TRON_MAINNET_CHAIN_ID,
    NodeKey,
    PayerKey,
    PaymentDomain,
)
from requester.protocol.codec import U64_MAX, U128_MAX
from requester.protocol.dht import (
    NODE_ADVERT_SALT,
    RENDEZVOUS_TAG,
    RENDEZVOUS_TARGET,
    bencoded_string,
    bep44_signing_buffer,
    content_target,
    libtorrent_secret,
    mutable_item_target,
    normalize_url,
    sign_mutable_item,
    url_target,
)
from requester.protocol.node_advert import MAX_ADVERT_URL, Market, NodeAdvert
from requester.protocol.payment_domain import keccak256

EDGE_SEED = bytes(range(32))
PAYEE_SECRET = bytes([0x22] * 32)
ISSUED_AT = 1_700_000_000
TRON_VECTOR_CONTRACT = keccak256(b"atlas.test-vector.tron-ledger")[12:]
URLS_TO_NORMALIZE = (
    "http://127.0.0.1:8080/v1/info",
    "HTTP://Example.COM:80/a%2fb%7Ec?q=%41#frag",
    "https://[::1]:443",
    "https://example.com:0443/?x",
)


def _advert_json(name: str, advert: NodeAdvert, bep44_seq: int) -> dict[str, Any]:
    m = advert.market
    encoded = advert.encode()
    value = bencoded_string(encoded)
    return {
        "name": name,
        "inputs": {
            "issued_at": advert.issued_at,
            "expires_at": advert.expires_at,
            "payee": advert.payee.raw.hex(),
            "asset": int(advert.asset.code),
            "chain_id": advert.domain.chain_id,
            "contract": advert.domain.contract.hex(),
            "reserve": str(m.reserve),
            "clearing_price": str(m.clearing_price),
            "price_per_chunk": str(m.price_per_chunk),
            "capacity": str(m.capacity),
            "slots": m.slots,
            "free_slots": m.free_slots,
            "round_seconds": m.round_seconds,
            "http_urls": list(advert.http_urls),
            "tunnel_url": advert.tunnel_url,
        },
        "signature": advert.signature.hex(),
        "encoded": encoded.hex(),
        "size": len(encoded),
        "bep44": {
            "seq": bep44_seq,
            "value": value.hex(),
            "signing_buffer": bep44_signing_buffer(NODE_ADVERT_SALT, bep44_seq, value).hex(),
            "signature": sign_mutable_item(
                NodeKey(EDGE_SEED), NODE_ADVERT_SALT, bep44_seq, value
            ).hex(),
        },
    }


def discovery_vectors(content_id: bytes) -> dict[str, Any]:
    key = NodeKey(EDGE_SEED)
    payee = PayerKey(PAYEE_SECRET).address
    local = NodeAdvert.create(
        key, issued_at=ISSUED_AT, expires_at=ISSUED_AT + 3600, payee=payee, asset=BTT_LOCAL,
        domain=PaymentDomain(LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT),
        market=Market(10**15, 10**15, 0, 0, 0, 0, 0), http_urls=("http://127.0.0.1:8080",),
    )  # fmt: skip
    # The largest advert there is: 996 bytes, exactly 1000 bencoded.
    long_url = "https://edge.example/" + "a" * (MAX_ADVERT_URL - 21)
    tron = NodeAdvert.create(
        key, issued_at=U64_MAX - 86400, expires_at=U64_MAX, payee=payee, asset=BTT,
        domain=PaymentDomain(TRON_MAINNET_CHAIN_ID, TRON_VECTOR_CONTRACT),
        market=Market(1, U128_MAX, U128_MAX, U64_MAX, 65535, 65535, 65535),
        http_urls=(long_url, long_url[:-1] + "b"), tunnel_url=long_url[: MAX_ADVERT_URL - 4],
    )  # fmt: skip
    return {
        "description": (
            "Discovery (docs/protocol.md section 12). Node adverts (ATN\\x01): 'signature' is "
            "Ed25519 over 'atlas.node-advert.v1' || encoded-without-signature by the node key "
            "(seed 00..1f). 'bep44' is the advert as a BEP 44 mutable item under that key, "
            "salt 'atlas.node.v1': value = bencoded string '<len>:<advert>' (at most 1000 bytes, "
            "so an advert is at most 996), signing_buffer = '4:salt13:atlas.node.v13:seqi<seq>e1:v'"
            " || value. libtorrent_secret = SHA-512(seed) with byte 0 &= 248, byte 31 &= 63 | 64"
            " (what libtorrent's dht_put_mutable_item takes). Targets are SHA-1 of tag || input."
        ),
        "node_key": {
            "seed": EDGE_SEED.hex(),
            "node_id": key.node_id.hex(),
            "libtorrent_secret": libtorrent_secret(EDGE_SEED).hex(),
            "advert_target": mutable_item_target(key.node_id, NODE_ADVERT_SALT).hex(),
        },
        "adverts": [_advert_json("local", local, 1), _advert_json("tron-largest", tron, 7)],
        "targets": {
            "content": {"content_id": content_id.hex(), "target": content_target(content_id).hex()},
            "urls": [
                {"url": url, "normalized": normalize_url(url), "target": url_target(url).hex()}
                for url in URLS_TO_NORMALIZE
            ],
            "rendezvous": {"tag": RENDEZVOUS_TAG.decode(), "target": RENDEZVOUS_TARGET.hex()},
        },
    }
