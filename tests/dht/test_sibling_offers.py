"""What an edge accepts as a sibling's copy of a URL (cdn_edge/dht/siblings.py, check_offer):
a head its edge signed for the same normalized URL, fresh by the caching headers it
signs, with its seal. Anything else is refused before a chunk is bought."""

from __future__ import annotations

import secrets

import pytest

from cdn_edge.dht.siblings import FRESH_MARGIN, check_offer
from requester.protocol import (
    ContentPublisher,
    ManifestHead,
    NodeKey,
    ProtocolError,
    UrlSource,
    b64url_decode,
    b64url_encode,
)

NOW = 1_800_000_000
URL = "http://Example.COM:80/a/%7efile?q=1"
SAME = "http://example.com/a/~file?q=1"
BASE = "http://127.0.0.31:8000"


def answer(url: str = SAME, *, max_age: int = 600, created: int = NOW, sealed: bool = True,
           status: int = 200) -> dict[str, object]:  # fmt: skip
    """A sibling's ``/v1/fetch`` answer for ``url``, made as an edge makes it."""
    key = NodeKey.generate()
    head = ManifestHead.create(
        key, source=UrlSource(url), status=status,
        headers=[("cache-control", f"max-age={max_age}")], created_at=created,
        nonce=secrets.token_bytes(16), chunk_size=256 * 1024, size_hint=5,
    )  # fmt: skip
    publisher = ContentPublisher(key, head)
    publisher.feed(b"hello")
    _, seal = publisher.finish()
    return {"head": b64url_encode(head.encode()),
            "seal": b64url_encode(seal.encode()) if sealed else None}  # fmt: skip


def test_a_fresh_sealed_copy_of_the_same_normalized_url_is_taken() -> None:
    offer = check_offer(BASE, URL, {}, answer(), NOW + 10)
    assert offer.provider == BASE
    assert offer.policy.fresh_until == NOW + 600
    assert offer.head.verify_seal(offer.seal_bytes).total_size == 5


@pytest.mark.parametrize(
    ("body", "now", "why"),
    [
        (answer("http://example.com/a/~file?q=2"), NOW, "another URL"),
        (answer(sealed=False), NOW, "not sealed"),
        (answer(max_age=600), NOW + 600 - FRESH_MARGIN + 1, "not fresh"),
        (answer(max_age=0), NOW, "not fresh"),
        (answer(created=NOW + 3600), NOW, "in the future"),
        (answer(status=206), NOW, "partial"),
        ("a list", NOW, "not a JSON object"),
    ],
)
def test_anything_else_is_refused(body: object, now: int, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        check_offer(BASE, URL, {}, body, now)


def test_a_head_or_seal_not_signed_by_its_edge_is_refused() -> None:
    good, other = answer(), answer()
    with pytest.raises(ProtocolError):
        check_offer(BASE, URL, {}, {"head": good["head"], "seal": other["seal"]}, NOW)
    head = bytearray(b64url_decode(str(good["head"]), 4096, "head"))
    head[-1] ^= 1  # the signature
    with pytest.raises(ProtocolError):
        check_offer(BASE, URL, {}, {"head": b64url_encode(bytes(head)), "seal": good["seal"]},
                    NOW)  # fmt: skip
