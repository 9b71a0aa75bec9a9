"""What Atlas keys in the BitTorrent mainline DHT: BEP 44 items and BEP 5 targets.

Discovery uses the DHT every edge already runs inside libtorrent; this module
holds the pure half of it, so requesters (PyNaCl only) and edges (libtorrent)
agree on every byte:

- an edge's node advert is a BEP 44 *mutable item* stored under its Ed25519
  node key with the salt :data:`NODE_ADVERT_SALT`. BEP 44 signs
  ``4:salt<len>:<salt>3:seqi<seq>e1:v<bencoded value>`` (:func:`bep44_signing_buffer`)
  and caps the bencoded value at 1000 bytes. Our value is a bencoded byte string,
  ``<len>:<bytes>``, so the advert itself may be at most :data:`MAX_BEP44_STRING`
  = 996 bytes;
- libtorrent signs with the 64-byte *expanded* secret (clamped SHA-512 of the
  seed, ref10's form), not libsodium's ``seed ‖ public key``:
  :func:`libtorrent_secret` derives it from our 32-byte seed;
- content, cached URLs and the rendezvous of all edges are BEP 5 infohashes:
  SHA-1 of a domain tag and the thing named (:func:`content_target`,
  :func:`url_target`, :data:`RENDEZVOUS_TARGET`).
"""

from __future__ import annotations

import hashlib
import re

from requester.protocol.errors import MalformedMessage
from requester.protocol.identity import ED25519_SIG_SIZE, NodeId, NodeKey

BEP44_MAX_VALUE = 1000
"""BEP 44: the bencoded ``v`` of an item is at most 1000 bytes."""
BEP44_MAX_SALT = 64
"""BEP 44: a salt is at most 64 bytes."""
NODE_ADVERT_SALT = b"atlas.node.v1"
"""The salt an edge's advert is stored under, with its node key as the BEP 44 key."""

CONTENT_TAG = b"atlas.content.v1"
URL_TAG = b"atlas.url.v1"
RENDEZVOUS_TAG = b"atlas.edges.v1"
_SEQ_MAX = (1 << 63) - 1


def _sha1(data: bytes) -> bytes:
    """SHA-1 because BEP 5 and BEP 44 targets are 160 bits; it names keys, it secures nothing."""
    return hashlib.sha1(data, usedforsecurity=False).digest()


def bencoded_string(data: bytes) -> bytes:
    """``<len>:<bytes>``, the bencoding of a byte string (what libtorrent stores as ``v``)."""
    return b"%d:%s" % (len(data), data)


def _largest_string(limit: int) -> int:
    n = limit
    while len(bencoded_string(bytes(n))) > limit:
        n -= 1
    return n


MAX_BEP44_STRING = _largest_string(BEP44_MAX_VALUE)
"""996: ``996:`` and 996 bytes are exactly 1000 bytes; 997 bytes bencode to 1001."""


def bep44_signing_buffer(salt: bytes, seq: int, value: bytes) -> bytes:
    """The bytes BEP 44 signs for a mutable item; ``value`` is already bencoded.

    The salt part is left out when the salt is empty, as BEP 44 says."""
    if len(salt) > BEP44_MAX_SALT:
        raise MalformedMessage(f"BEP 44 salt is {len(salt)} bytes, limit {BEP44_MAX_SALT}")
    if not 0 <= seq <= _SEQ_MAX:
        raise MalformedMessage(f"BEP 44 sequence number {seq} out of range")
    if len(value) > BEP44_MAX_VALUE:
        raise MalformedMessage(
            f"BEP 44 value is {len(value)} bytes bencoded, limit {BEP44_MAX_VALUE}"
        )
    head = b"4:salt" + bencoded_string(salt) if salt else b""
    return head + b"3:seqi%de1:v" % seq + value


def sign_mutable_item(key: NodeKey, salt: bytes, seq: int, value: bytes) -> bytes:
    """The BEP 44 signature a DHT node checks before storing ``value`` (bencoded)."""
    return key.sign(bep44_signing_buffer(salt, seq, value))


def verify_mutable_item(
    node_id: NodeId, salt: bytes, seq: int, value: bytes, signature: bytes
) -> None:
    """Raise :class:`InvalidSignature` unless ``signature`` is the node's BEP 44 signature."""
    if len(signature) != ED25519_SIG_SIZE:
        raise MalformedMessage(f"BEP 44 signature must be {ED25519_SIG_SIZE} bytes")
    node_id.verify(bep44_signing_buffer(salt, seq, value), signature, "BEP 44 item")


def mutable_item_target(node_id: NodeId, salt: bytes) -> bytes:
    """BEP 44: the DHT target of a mutable item is SHA-1(public key ‖ salt)."""
    return _sha1(node_id.raw + salt)


def libtorrent_secret(seed: bytes) -> bytes:
    """The 64-byte secret libtorrent's ``dht_put_mutable_item`` wants for our seed.

    libtorrent's ``ed25519_create_keypair(seed)`` keeps SHA-512(seed) with the
    first half clamped (the scalar) and the second half as the nonce prefix;
    its signatures are then byte-identical to RFC 8032's (PyNaCl's)."""
    if len(seed) != 32:
        raise MalformedMessage("an Ed25519 seed is 32 bytes")
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return bytes(h)


def content_target(content_id: bytes) -> bytes:
    """BEP 5 infohash an edge announces for content it serves."""
    if len(content_id) != 32:
        raise MalformedMessage("a content id is 32 bytes")
    return _sha1(CONTENT_TAG + content_id)


def url_target(url: str) -> bytes:
    """BEP 5 infohash an edge announces for a URL it holds fresh (sibling caches)."""
    return _sha1(URL_TAG + normalize_url(url).encode("ascii"))


RENDEZVOUS_TARGET = _sha1(RENDEZVOUS_TAG)
"""BEP 5 infohash every DHT edge announces, so a requester can list edges."""

_URL = re.compile(
    r"(?P<scheme>https?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[^/?#:@\[\]]+)(?::(?P<port>[0-9]*))?"
    r"(?P<rest>[/?][\x21-\x7e]*)?",
    re.ASCII | re.IGNORECASE,
)
_PRINTABLE = re.compile(r"[\x21-\x7e]+", re.ASCII)
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DEFAULT_PORT = {"http": "80", "https": "443"}
MAX_URL_BYTES = 8192


def normalize_url(url: str) -> str:
    """The one spelling of a URL two edges agree on (RFC 3986 section 6.2.2, no more).

    Lowercase scheme and host, no default port, ``/`` for an empty path, no
    fragment, percent-escapes in upper case and unreserved characters unescaped.
    Paths and queries are otherwise kept byte for byte: ``/a`` and ``/a/`` or a
    reordered query may be different resources to an origin."""
    if not isinstance(url, str) or len(url) > MAX_URL_BYTES or not _PRINTABLE.fullmatch(url):
        raise MalformedMessage(f"URL must be printable ASCII, at most {MAX_URL_BYTES} bytes")
    m = _URL.fullmatch(url.split("#", 1)[0])
    if m is None or (m["port"] and int(m["port"]) > 65535):
        raise MalformedMessage(f"URL must be absolute http(s) without user info: {url[:80]!r}")
    scheme, host = m["scheme"].lower(), m["host"].lower()
    port = str(int(m["port"])) if m["port"] else ""
    if port == _DEFAULT_PORT[scheme]:
        port = ""
    rest = m["rest"] or "/"
    if rest.startswith("?"):
        rest = "/" + rest
    return f"{scheme}://{host}{':' + port if port else ''}{_ESCAPE.sub(_unescape, rest)}"


def _unescape(m: re.Match[str]) -> str:
    byte = int(m[1], 16)
    return chr(byte) if byte in _UNRESERVED else "%" + m[1].upper()
