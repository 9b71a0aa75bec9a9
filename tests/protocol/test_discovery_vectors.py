"""tests/vectors/discovery.json against the code, and rebuilt by hand from docs/protocol.md.

As test_vectors.py does for the other messages: rebuild each advert from its
recorded inputs (Ed25519 is deterministic), decode the recorded bytes, and
recompute the BEP 44 buffer, libtorrent's expanded secret and the SHA-1 targets
with nothing but hashlib and libsodium.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.signing
import pytest

from requester.protocol import Asset, NodeId, NodeKey, PaymentDomain, TronAddress, asset_by_code
from requester.protocol.dht import (
    RENDEZVOUS_TARGET,
    bep44_signing_buffer,
    content_target,
    libtorrent_secret,
    mutable_item_target,
    normalize_url,
    sign_mutable_item,
    url_target,
    verify_mutable_item,
)
from requester.protocol.node_advert import Market, NodeAdvert

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "discovery.json").read_text("utf-8")
)
KEY = VECTORS["node_key"]
SEED = bytes.fromhex(KEY["seed"])
NODE_ID = bytes.fromhex(KEY["node_id"])
SALT = b"atlas.node.v1"  # docs/protocol.md section 12, spelled out


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data, usedforsecurity=False).digest()


def test_fixed_seed_gives_fixed_libtorrent_secret() -> None:
    secret = bytes.fromhex(KEY["libtorrent_secret"])
    assert libtorrent_secret(SEED) == secret
    by_hand = bytearray(hashlib.sha512(SEED).digest())
    by_hand[0] &= 0xF8
    by_hand[31] = (by_hand[31] & 0x3F) | 0x40
    assert secret == bytes(by_hand)
    # Its first half is the scalar whose multiple of the base point is the node id.
    assert nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(secret[:32]) == NODE_ID
    assert NodeKey(SEED).node_id.raw == NODE_ID


def test_advert_target() -> None:
    assert bytes.fromhex(KEY["advert_target"]) == _sha1(NODE_ID + SALT)
    assert mutable_item_target(NodeId(NODE_ID), SALT) == _sha1(NODE_ID + SALT)


@pytest.mark.parametrize("vector", VECTORS["adverts"], ids=lambda v: v["name"])
def test_advert_rebuilds_and_decodes(vector: dict[str, Any]) -> None:
    i = vector["inputs"]
    asset: Asset = asset_by_code(i["asset"])
    market = Market(
        int(i["reserve"]), int(i["clearing_price"]), int(i["price_per_chunk"]),
        int(i["capacity"]), i["slots"], i["free_slots"], i["round_seconds"],
    )  # fmt: skip
    made = NodeAdvert.create(
        NodeKey(SEED), issued_at=i["issued_at"], expires_at=i["expires_at"],
        payee=TronAddress(bytes.fromhex(i["payee"])), asset=asset,
        domain=PaymentDomain(i["chain_id"], bytes.fromhex(i["contract"])), market=market,
        http_urls=tuple(i["http_urls"]), tunnel_url=i["tunnel_url"],
    )  # fmt: skip
    encoded = bytes.fromhex(vector["encoded"])
    assert made.encode() == encoded
    assert len(encoded) == vector["size"] <= 996
    assert NodeAdvert.decode(encoded, i["issued_at"], NodeId(NODE_ID)) == made
    # By hand: magic, node id first; Ed25519 over the tag and everything before the signature.
    assert encoded[:4] == b"ATN\x01" and encoded[4:36] == NODE_ID
    nacl.signing.VerifyKey(NODE_ID).verify(
        b"atlas.node-advert.v1" + encoded[:-64], bytes.fromhex(vector["signature"])
    )


@pytest.mark.parametrize("vector", VECTORS["adverts"], ids=lambda v: v["name"])
def test_advert_as_bep44_item(vector: dict[str, Any]) -> None:
    encoded = bytes.fromhex(vector["encoded"])
    item = vector["bep44"]
    value = bytes.fromhex(item["value"])
    assert value == str(len(encoded)).encode() + b":" + encoded
    by_hand = b"4:salt13:atlas.node.v13:seqi" + str(item["seq"]).encode() + b"e1:v" + value
    assert bytes.fromhex(item["signing_buffer"]) == by_hand
    assert bep44_signing_buffer(SALT, item["seq"], value) == by_hand
    signature = bytes.fromhex(item["signature"])
    assert sign_mutable_item(NodeKey(SEED), SALT, item["seq"], value) == signature
    nacl.signing.VerifyKey(NODE_ID).verify(by_hand, signature)
    verify_mutable_item(NodeId(NODE_ID), SALT, item["seq"], value, signature)


def test_largest_advert_fills_the_bep44_value_exactly() -> None:
    sizes = {v["name"]: len(bytes.fromhex(v["bep44"]["value"])) for v in VECTORS["adverts"]}
    assert sizes["tron-largest"] == 1000


def test_targets() -> None:
    targets = VECTORS["targets"]
    content_id = bytes.fromhex(targets["content"]["content_id"])
    expected = _sha1(b"atlas.content.v1" + content_id)
    assert content_target(content_id) == expected == bytes.fromhex(targets["content"]["target"])
    for entry in targets["urls"]:
        assert normalize_url(entry["url"]) == entry["normalized"]
        by_hand = _sha1(b"atlas.url.v1" + entry["normalized"].encode("ascii"))
        assert url_target(entry["url"]) == by_hand == bytes.fromhex(entry["target"])
    rendezvous = _sha1(b"atlas.edges.v1")
    assert RENDEZVOUS_TARGET == rendezvous == bytes.fromhex(targets["rendezvous"]["target"])
