"""BEP 44 with libtorrent: its signatures verify under PyNaCl, ours verify in libtorrent.

Real libtorrent 2.x sessions on 127.0.0.1 (tests/dht/private_dht.py: no
bootstrap node but each other, LSD/UPnP/NAT-PMP off). The Python binding
exposes no ``ed25519_*`` functions, so libtorrent's side of each check is its
DHT itself: ``dht_put_mutable_item`` signs (a), and a libtorrent node checks the
signature of a raw KRPC ``put`` before storing it (b: ``206 invalid signature``
otherwise) and the size of its value (``205 message too big`` past 1000 bytes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import libtorrent as lt
import nacl.exceptions
import nacl.signing
import pytest

from requester.dht_keys import MutableItem, get_advert, put_advert, read_advert
from requester.protocol import (
    BTT_LOCAL,
    LOCAL_CHAIN_ID,
    LOCAL_LEDGER_CONTRACT,
    InvalidSignature,
    NodeKey,
    PayerKey,
    PaymentDomain,
    WrongBinding,
)
from requester.protocol.dht import (
    NODE_ADVERT_SALT,
    bencoded_string,
    bep44_signing_buffer,
    libtorrent_secret,
    mutable_item_target,
    sign_mutable_item,
)
from requester.protocol.node_advert import MAX_ADVERT_URL, Market, NodeAdvert
from tests.conftest import EDGE_SEED, NOW, OTHER_EDGE_SEED, PAYEE_SECRET
from tests.dht.private_dht import krpc, private_dht, wait_alert

EDGE = NodeKey(EDGE_SEED)
OTHER = NodeKey(OTHER_EDGE_SEED)
QUERIER_ID = hashlib.sha1(b"atlas test querier", usedforsecurity=False).digest()


def make_advert(key: NodeKey = EDGE, urls: tuple[str, ...] = ("http://127.0.0.1:8080",),
                tunnel: str | None = None) -> NodeAdvert:  # fmt: skip
    return NodeAdvert.create(
        key, issued_at=NOW, expires_at=NOW + 3600, payee=PayerKey(PAYEE_SECRET).address,
        asset=BTT_LOCAL, domain=PaymentDomain(LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT),
        market=Market(1000, 1000, 0, 0, 0, 0, 0),
        http_urls=urls, tunnel_url=tunnel,
    )  # fmt: skip


def largest_advert() -> NodeAdvert:
    """996 bytes, the most a BEP 44 value holds: two long HTTP URLs and a tunnel URL."""
    urls = ("http://a/" + "x" * (MAX_ADVERT_URL - 9), "http://b/" + "y" * (MAX_ADVERT_URL - 9))
    room = 996 - len(make_advert(urls=urls, tunnel="http://t/").encode())
    made = make_advert(urls=urls, tunnel="http://t/" + "z" * room)
    assert len(made.encode()) == 996
    return made


@pytest.fixture(scope="module")
def dht() -> Iterator[list[lt.session]]:
    with private_dht(3) as sessions:
        yield sessions


@pytest.fixture(scope="module")
def lone_node() -> Iterator[lt.session]:
    """A libtorrent DHT node talked to in raw KRPC: kept apart, as a test's UDP sockets close
    and would stall lookups among the others if they ever made it into routing tables."""
    with private_dht(1) as (session,):
        yield session


def _put_result(alert: Any) -> tuple[int, int, bytes] | None:
    if isinstance(alert, lt.dht_put_alert):
        return int(alert.num_success), int(alert.seq), bytes(alert.signature)
    return None


def _item(alert: Any) -> tuple[MutableItem | None] | None:
    if isinstance(alert, lt.dht_mutable_item_alert) and alert.authoritative:
        return (MutableItem.of_alert(alert),)
    return None


def test_libtorrent_signs_with_our_expanded_secret_and_pynacl_verifies(
    dht: list[lt.session],
) -> None:
    advert = largest_advert()
    put_advert(dht[0], EDGE, advert)
    stored, seq, signature = wait_alert(dht[0], _put_result)
    assert stored >= 1
    value = bencoded_string(advert.encode())
    assert len(value) == 1000
    buffer = bep44_signing_buffer(NODE_ADVERT_SALT, seq, value)
    nacl.signing.VerifyKey(EDGE.node_id.raw).verify(buffer, signature)
    assert signature == sign_mutable_item(EDGE, NODE_ADVERT_SALT, seq, value)  # byte for byte

    get_advert(dht[2], EDGE.node_id)
    (item,) = wait_alert(dht[2], _item)
    assert item is not None and item.seq == seq and item.signature == signature
    assert read_advert(item, NOW) == advert


def test_libsodiums_secret_form_is_not_what_libtorrent_wants(dht: list[lt.session]) -> None:
    """libsodium's 64-byte secret is seed || public key; libtorrent reads the first half as
    the scalar, so its signatures then fail to verify: the expanded form is needed."""
    libsodium_secret = bytes(nacl.signing.SigningKey(EDGE_SEED)._signing_key)
    assert libsodium_secret != libtorrent_secret(EDGE_SEED)
    dht[1].dht_put_mutable_item(libsodium_secret, EDGE.node_id.raw, b"x", b"atlas.test.v0")
    _, seq, signature = wait_alert(dht[1], _put_result)
    buffer = bep44_signing_buffer(b"atlas.test.v0", seq, bencoded_string(b"x"))
    with pytest.raises(nacl.exceptions.BadSignatureError):
        nacl.signing.VerifyKey(EDGE.node_id.raw).verify(buffer, signature)


def _put(port: int, key: NodeKey, salt: bytes, seq: int, data: bytes, sig: bytes) -> Any:
    target = mutable_item_target(key.node_id, salt)
    token = krpc(port, b"get", {b"id": QUERIER_ID, b"target": target})[b"r"][b"token"]
    args = {b"id": QUERIER_ID, b"token": token, b"k": key.node_id.raw, b"salt": salt,
            b"seq": seq, b"sig": sig, b"v": data}  # fmt: skip
    return krpc(port, b"put", args)


def test_libtorrent_accepts_our_signature_and_refuses_a_wrong_one(lone_node: lt.session) -> None:
    port, salt, seq = lone_node.listen_port(), b"atlas.test.v1", 5
    data = make_advert(OTHER).encode()
    ours = sign_mutable_item(OTHER, salt, seq, bencoded_string(data))
    flipped = bytes([ours[0] ^ 1]) + ours[1:]
    assert _put(port, OTHER, salt, seq, data, flipped)[b"e"] == [206, b"invalid signature"]
    by_other = sign_mutable_item(EDGE, salt, seq, bencoded_string(data))
    assert _put(port, OTHER, salt, seq, data, by_other)[b"e"] == [206, b"invalid signature"]
    assert _put(port, OTHER, salt, seq, data, ours)[b"y"] == b"r"
    target = mutable_item_target(OTHER.node_id, salt)
    got = krpc(port, b"get", {b"id": QUERIER_ID, b"target": target})[b"r"]
    assert (got[b"v"], got[b"sig"], got[b"seq"], got[b"k"]) == (data, ours, seq, OTHER.node_id.raw)


def test_the_1000_byte_rule_in_libtorrent(dht: list[lt.session], lone_node: lt.session) -> None:
    """996 raw bytes bencode to exactly 1000 and are stored; 997 (1001) are refused."""
    port, salt = lone_node.listen_port(), b"atlas.test.v2"
    for seq, size in ((1, 996), (2, 997)):
        data = bytes([0x61]) * size
        # By hand: bep44_signing_buffer refuses a value over 1000 bytes, libtorrent must too.
        sig = OTHER.sign(b"4:salt13:atlas.test.v23:seqi%de1:v%d:%s" % (seq, size, data))
        answer = _put(port, OTHER, salt, seq, data, sig)
        if size == 996:
            assert answer[b"y"] == b"r"
        else:
            assert answer[b"e"] == [205, b"message too big"]
    # libtorrent's own put: 996 bytes reach the other nodes, 997 reach none.
    for size, expect_stored in ((996, True), (997, False)):
        dht[0].dht_put_mutable_item(
            libtorrent_secret(OTHER_EDGE_SEED), OTHER.node_id.raw, b"b" * size, b"atlas.test.v3"
        )
        stored, _, _ = wait_alert(dht[0], _put_result)
        assert (stored >= 1) is expect_stored


def test_an_advert_is_put_only_under_its_own_key(dht: list[lt.session]) -> None:
    with pytest.raises(WrongBinding, match="cannot be put under"):
        put_advert(dht[0], OTHER, make_advert())


def test_nothing_found_is_no_item(dht: list[lt.session]) -> None:
    dht[0].dht_get_mutable_item(OTHER.node_id.raw, b"atlas.nothing.here")
    assert wait_alert(dht[0], _item) == (None,)


def _signed_item(key: NodeKey, advert: NodeAdvert, salt: bytes = NODE_ADVERT_SALT) -> MutableItem:
    data = advert.encode()
    sig = sign_mutable_item(key, salt, 3, bencoded_string(data))
    return MutableItem(key.node_id.raw, salt, 3, data, sig, authoritative=True)


def test_read_advert_refusals() -> None:
    advert = make_advert()
    assert read_advert(_signed_item(EDGE, advert), NOW) == advert
    with pytest.raises(WrongBinding, match="salt"):
        read_advert(_signed_item(EDGE, advert, b"atlas.node.v2"), NOW)
    with pytest.raises(WrongBinding, match="stored under node"):
        read_advert(_signed_item(OTHER, advert), NOW)  # someone else republishing our advert
    good = _signed_item(EDGE, advert)
    with pytest.raises(InvalidSignature, match="BEP 44"):
        read_advert(MutableItem(good.key, good.salt, 4, good.value, good.signature, True), NOW)
