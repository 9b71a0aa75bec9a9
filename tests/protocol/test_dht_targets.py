"""The pure DHT helpers: BEP 44 buffers and their limits, URL normalization, target keys."""

from __future__ import annotations

import pytest

from requester.protocol import InvalidSignature, MalformedMessage, NodeKey
from requester.protocol.dht import (
    bencoded_string,
    bep44_signing_buffer,
    content_target,
    libtorrent_secret,
    normalize_url,
    sign_mutable_item,
    url_target,
    verify_mutable_item,
)
from tests.conftest import EDGE_SEED, OTHER_EDGE_SEED

EDGE = NodeKey(EDGE_SEED)


def test_buffer_without_salt_leaves_the_salt_out() -> None:
    """BEP 44's own example: no salt, seq 1, v = "Hello World!"."""
    value = bencoded_string(b"Hello World!")
    assert bep44_signing_buffer(b"", 1, value) == b"3:seqi1e1:v12:Hello World!"
    assert bep44_signing_buffer(b"foobar", 1, value) == (
        b"4:salt6:foobar3:seqi1e1:v12:Hello World!"
    )


@pytest.mark.parametrize(
    ("salt", "seq", "value", "message"),
    [
        (b"s" * 65, 1, b"0:", "salt is 65 bytes"),
        (b"s", -1, b"0:", "sequence number -1"),
        (b"s", 1 << 63, b"0:", "out of range"),
        (b"s", 1, bencoded_string(bytes(997)), "1001 bytes bencoded, limit 1000"),
    ],
)
def test_buffer_limits(salt: bytes, seq: int, value: bytes, message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        bep44_signing_buffer(salt, seq, value)


def test_buffer_at_the_limits() -> None:
    value = bencoded_string(bytes(996))
    assert len(value) == 1000
    assert bep44_signing_buffer(b"s" * 64, (1 << 63) - 1, value).endswith(value)


def test_a_mutable_item_signature_is_bound_to_key_salt_seq_and_value() -> None:
    value = bencoded_string(b"advert")
    signature = sign_mutable_item(EDGE, b"atlas.node.v1", 3, value)
    verify_mutable_item(EDGE.node_id, b"atlas.node.v1", 3, value, signature)
    for node_id, salt, seq, v in [
        (NodeKey(OTHER_EDGE_SEED).node_id, b"atlas.node.v1", 3, value),
        (EDGE.node_id, b"atlas.node.v2", 3, value),
        (EDGE.node_id, b"atlas.node.v1", 4, value),
        (EDGE.node_id, b"atlas.node.v1", 3, bencoded_string(b"advers")),
    ]:
        with pytest.raises(InvalidSignature):
            verify_mutable_item(node_id, salt, seq, v, signature)
    with pytest.raises(MalformedMessage, match="64 bytes"):
        verify_mutable_item(EDGE.node_id, b"atlas.node.v1", 3, value, signature[:63])


def test_libtorrent_secret_needs_a_seed() -> None:
    with pytest.raises(MalformedMessage, match="32 bytes"):
        libtorrent_secret(bytes(31))


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("http://example.com", "http://example.com/"),
        ("HTTPS://EXAMPLE.com:443/A?B#c", "https://example.com/A?B"),
        ("http://h:8080/%7euser/%2f%zz", "http://h:8080/~user/%2F%zz"),
        ("http://h:08080/x", "http://h:8080/x"),
        ("http://[::1]:80/", "http://[::1]/"),
        ("http://h?q", "http://h/?q"),
        ("https://h:80/", "https://h:80/"),
    ],
)
def test_normalize_url(url: str, normal: str) -> None:
    assert normalize_url(url) == normal
    assert normalize_url(normal) == normal
    assert url_target(url) == url_target(normal)


@pytest.mark.parametrize(
    "url",
    ["ftp://h/", "http://", "http://user@h/", "http://h:65536/", "http://h /", "h/x",
     "http://h/\u00e9", "http://h/" + "x" * 8192],
)  # fmt: skip
def test_normalize_refuses(url: str) -> None:
    with pytest.raises(MalformedMessage):
        normalize_url(url)


def test_content_target_needs_a_content_id() -> None:
    with pytest.raises(MalformedMessage, match="32 bytes"):
        content_target(bytes(20))
