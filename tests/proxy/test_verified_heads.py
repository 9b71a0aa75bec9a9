"""The SDK remembers heads it verified (requester.client.verified_head), so a cached
content's repeated ``/v1/fetch`` answers cost the proxy no second signature check; only
the exact bytes that verified are remembered, so a forged head is still refused."""

from __future__ import annotations

import pytest

from requester.client import verified_head
from requester.protocol import ManifestHead, NodeKey, ProtocolError
from requester.protocol.source import UrlSource


def _head(status: int = 200) -> bytes:
    head = ManifestHead.create(
        NodeKey.generate(), source=UrlSource("http://example.test/a.js"), status=status,
        headers=[("content-type", "text/javascript")], created_at=1_800_000_000,
        nonce=bytes(range(16)),
    )  # fmt: skip
    return head.encode()


def test_a_remembered_head_is_the_verified_one_and_a_forgery_is_refused() -> None:
    data = _head()
    first = verified_head(data)
    assert verified_head(bytes(data)) is first  # equal bytes: the head already verified
    assert first.content_id == ManifestHead.decode(data).content_id
    for at in (len(data) // 2, len(data) - 1):  # a byte of a field, of the signature
        forged = bytearray(data)
        forged[at] ^= 1
        with pytest.raises(ProtocolError):
            verified_head(bytes(forged))
        with pytest.raises(ProtocolError):  # refused again: a failure is never remembered
            verified_head(bytes(forged))
