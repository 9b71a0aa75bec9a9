"""A provider's signed word that it serves some content, for trackers.

Trackers hand out these records; requesters check the signature, so a
tracker cannot invent providers, only withhold them. Records expire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from requester.protocol.codec import MAGIC_PREFIX, Reader, Writer
from requester.protocol.errors import MalformedMessage
from requester.protocol.identity import ED25519_SIG_SIZE, NODE_ID_SIZE, NodeId, NodeKey

RECORD_MAGIC = MAGIC_PREFIX + b"P\x01"
MAX_PROVIDER_URL = 2048
MAX_RECORD_BYTES = 4 + 32 + NODE_ID_SIZE + 2 + MAX_PROVIDER_URL + 8 + ED25519_SIG_SIZE
_URL = re.compile(r"https?://[\x21-\x7e]+", re.ASCII)


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    content_id: bytes
    node_id: NodeId
    url: str
    """Base URL of the provider's edge API."""
    expires_at: int
    signature: bytes

    @classmethod
    def create(cls, key: NodeKey, content_id: bytes, url: str, expires_at: int) -> ProviderRecord:
        body = _body(content_id, key.node_id, url, expires_at)
        return cls(content_id, key.node_id, url, expires_at, key.sign(body))

    @classmethod
    def decode(cls, data: bytes) -> ProviderRecord:
        """Parse and verify a record signed by the provider it names."""
        if len(data) > MAX_RECORD_BYTES:
            raise MalformedMessage("provider record too long")
        r = Reader(data, RECORD_MAGIC, "provider record")
        content_id = r.fixed(32)
        node_id = NodeId(r.fixed(NODE_ID_SIZE))
        url = r.text16(MAX_PROVIDER_URL, "provider url")
        expires_at = r.u64()
        signature = r.fixed(ED25519_SIG_SIZE)
        r.end()
        _check_url(url)
        node_id.verify(data[:-ED25519_SIG_SIZE], signature, "provider record")
        return cls(content_id, node_id, url, expires_at, signature)

    def encode(self) -> bytes:
        return _body(self.content_id, self.node_id, self.url, self.expires_at) + self.signature


def _check_url(url: str) -> None:
    if not _URL.fullmatch(url) or len(url) > MAX_PROVIDER_URL:
        raise MalformedMessage(f"provider URL must be absolute http(s): {url[:80]!r}")


def _body(content_id: bytes, node_id: NodeId, url: str, expires_at: int) -> bytes:
    _check_url(url)
    w = Writer(RECORD_MAGIC).fixed(content_id, 32).fixed(node_id.raw, NODE_ID_SIZE)
    return w.text16(url).u64(expires_at).getvalue()
