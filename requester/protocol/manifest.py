"""The signed description of a piece of content, made so it can stream.

A manifest is signed in two parts, because an edge must serve the first chunks
of a large or slow response before the origin has finished sending it:

- the **head**, signed when the origin's status and headers arrive: source,
  status, headers, chunk size, edge id and time. ``content_id`` is the SHA-256
  of the head's canonical bytes, so quotes, vouchers and tracker records can
  name the content from the first byte on;
- one **chunk statement** per chunk, signed as soon as the chunk is complete:
  ``(content_id, index, size, sha256)``. Any provider forwards the origin edge's
  statement with the chunk, so a requester verifies each chunk on arrival with
  one Ed25519 verify and one SHA-256, whoever serves it;
- the **seal**, signed when the response has ended: total size, chunk count and
  the digest of the ordered chunk-hash list. It tells a requester where the
  content ends, and binds every chunk hash in one signature.

See ``docs/protocol.md`` for byte layouts and why this beats a Merkle tree here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from requester.protocol.codec import MAGIC_PREFIX, U64_MAX, Reader, Writer
from requester.protocol.errors import MalformedMessage, WrongBinding
from requester.protocol.identity import ED25519_SIG_SIZE, NODE_ID_SIZE, NodeId, NodeKey
from requester.protocol.source import Source, read_source, write_source

HEAD_MAGIC = MAGIC_PREFIX + b"M\x01"
STATEMENT_MAGIC = MAGIC_PREFIX + b"C\x01"
SEAL_MAGIC = MAGIC_PREFIX + b"S\x01"
CHUNK_LIST_TAG = b"atlas.chunk-list.v1"

DEFAULT_CHUNK_SIZE = 256 * 1024
LARGE_CHUNK_SIZE = 1024 * 1024
LARGE_BODY = 64 * 1024 * 1024
"""A body at least this large (by its stated size) is cut in :data:`LARGE_CHUNK_SIZE` chunks."""
MIN_CHUNK_SIZE = 16 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024
MAX_CHUNKS = 1 << 22
MAX_HEADERS = 64
MAX_HEADER_NAME = 128
MAX_HEADER_VALUE = 8192
MAX_HEADER_BYTES = 32 * 1024
MAX_HEAD_BYTES = 48 * 1024
NONCE_SIZE = 16
UNKNOWN_SIZE = U64_MAX


def chunk_size_for(size_hint: int, base: int = DEFAULT_CHUNK_SIZE) -> int:
    """The chunk size an origin edge signs for a body of ``size_hint`` bytes: ``base`` (256
    KiB), or 1 MiB for a body of 64 MiB or more. Each chunk costs a requester a statement
    check, a frame and its bookkeeping, a quarter of the work per byte at 1 MiB, while the
    first byte of a large body waits for a whole chunk: about a millisecond more at the
    rates a large body is read, against 400 chunks fewer per 100 MiB (docs/performance.md).
    An unknown size keeps ``base``: a short body cut in large chunks would wait longest."""
    if size_hint != UNKNOWN_SIZE and size_hint >= LARGE_BODY:
        return max(base, LARGE_CHUNK_SIZE)
    return base


STATEMENT_SIZE = 4 + 32 + 4 + 4 + 32 + ED25519_SIG_SIZE
SEAL_SIZE = 4 + 32 + 8 + 4 + 32 + ED25519_SIG_SIZE

FORBIDDEN_HEADERS = frozenset(
    {
        # hop-by-hop: meaningful on one connection only
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
        # framing: chunks carry the identity-decoded bytes, sized by the manifest
        "content-length",
        "content-encoding",
        "content-range",  # except in a 206 head: see PARTIAL_CONTENT
        # per-user state must never be shared through a content-addressed cache
        "set-cookie",
        "set-cookie2",
    }
)
PARTIAL_CONTENT = 206
"""A 206 head is one byte range of a representation: it carries the origin's
``content-range`` (one range, ``bytes FIRST-LAST/TOTAL`` or ``/*``); the chunks are that
range's bytes. Every other head refuses ``content-range``."""
_CONTENT_RANGE = re.compile(r"bytes (\d{1,19})-(\d{1,19})/(\d{1,19}|\*)", re.ASCII)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+", re.ASCII)
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def check_header(name: str, value: str, status: int = 200) -> None:
    """Refuse a header that may not appear in a manifest of ``status`` (forbidden, or
    malformed)."""
    if not _TOKEN.fullmatch(name) or len(name) > MAX_HEADER_NAME:
        raise MalformedMessage(f"header name must be a lowercase token: {name[:80]!r}")
    if name == "content-range" and status == PARTIAL_CONTENT:
        match = _CONTENT_RANGE.fullmatch(value)
        if match is None or int(match[1]) > int(match[2]):
            raise MalformedMessage(f"content-range must be one byte range: {value[:80]!r}")
        if match[3] != "*" and int(match[2]) >= int(match[3]):
            raise MalformedMessage(f"content-range ends past its total: {value[:80]!r}")
        return
    if name in FORBIDDEN_HEADERS:
        raise MalformedMessage(f"header {name!r} may not appear in a manifest")
    if not _FIELD_VALUE.fullmatch(value) or len(value.encode("utf-8")) > MAX_HEADER_VALUE:
        raise MalformedMessage(f"bad value for header {name!r}")


def _check_headers(headers: Sequence[tuple[str, str]], status: int) -> None:
    if len(headers) > MAX_HEADERS:
        raise MalformedMessage(f"manifest has {len(headers)} headers, limit {MAX_HEADERS}")
    if sum(1 for name, _ in headers if name == "content-range") > 1:
        raise MalformedMessage("a manifest has at most one content-range")
    total = 0
    for name, value in headers:
        check_header(name, value, status)
        total += len(name) + len(value.encode("utf-8"))
    if total > MAX_HEADER_BYTES:
        raise MalformedMessage(f"manifest headers total {total} bytes, limit {MAX_HEADER_BYTES}")


def check_chunk_size(chunk_size: int) -> None:
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE or chunk_size & (chunk_size - 1):
        raise MalformedMessage(
            f"chunk size {chunk_size} is not a power of two in [{MIN_CHUNK_SIZE}, {MAX_CHUNK_SIZE}]"
        )


@dataclass(frozen=True, slots=True)
class ManifestHead:
    """The signed start of a manifest; exists only with a valid signature."""

    edge_id: NodeId
    created_at: int
    nonce: bytes
    """16 random bytes from the edge, so two fetches of one URL never share a content id."""
    source: Source
    status: int
    headers: tuple[tuple[str, str], ...]
    chunk_size: int
    size_hint: int
    """Expected total size from the origin (``UNKNOWN_SIZE`` if it did not say)."""
    signature: bytes
    _content_id: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Hashed once: every chunk check and request names the content by its id.
        object.__setattr__(self, "_content_id", hashlib.sha256(self.body).digest())

    @property
    def stated_chunks(self) -> int | None:
        """The chunk count the size the origin stated makes (None if it stated none): the
        seal, which comes last, has the exact one."""
        if self.size_hint == UNKNOWN_SIZE:
            return None
        return -(-self.size_hint // self.chunk_size)

    @classmethod
    def create(
        cls,
        key: NodeKey,
        *,
        source: Source,
        status: int,
        headers: Iterable[tuple[str, str]],
        created_at: int,
        nonce: bytes = bytes(NONCE_SIZE),
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        size_hint: int = UNKNOWN_SIZE,
    ) -> ManifestHead:
        """Sign a new head. Header names are lower-cased; order is kept.

        Edges pass a fresh random ``nonce`` (the core does no I/O, so it cannot draw one):
        two responses for the same URL in the same second must not share a content id.
        """
        if len(nonce) != NONCE_SIZE:
            raise MalformedMessage(f"manifest nonce is {NONCE_SIZE} bytes")
        normalized = tuple((n.lower(), v) for n, v in headers)
        body = _head_body(
            key.node_id, created_at, nonce, source, status, normalized, chunk_size, size_hint
        )
        return cls(
            key.node_id,
            created_at,
            nonce,
            source,
            status,
            normalized,
            chunk_size,
            size_hint,
            key.sign(body),
        )

    @classmethod
    def decode(cls, data: bytes) -> ManifestHead:
        """Parse and verify a head; refuses anything malformed or not signed by its edge."""
        if len(data) > MAX_HEAD_BYTES:
            raise MalformedMessage(f"manifest head is {len(data)} bytes, limit {MAX_HEAD_BYTES}")
        r = Reader(data, HEAD_MAGIC, "manifest head")
        edge_id = NodeId(r.fixed(NODE_ID_SIZE))
        created_at = r.u64()
        nonce = r.fixed(NONCE_SIZE)
        source = read_source(r)
        status = r.u16()
        count = r.u16()
        if count > MAX_HEADERS:
            raise MalformedMessage(f"manifest has {count} headers, limit {MAX_HEADERS}")
        headers = tuple(
            (r.text16(MAX_HEADER_NAME, "header name"), r.text16(MAX_HEADER_VALUE, "header value"))
            for _ in range(count)
        )
        chunk_size = r.u32()
        size_hint = r.u64()
        body_end = r.offset
        signature = r.fixed(ED25519_SIG_SIZE)
        r.end()
        _check_head_fields(status, headers, chunk_size, size_hint)
        edge_id.verify(data[:body_end], signature, "manifest head")
        return cls(
            edge_id, created_at, nonce, source, status, headers, chunk_size, size_hint, signature
        )

    @property
    def body(self) -> bytes:
        return _head_body(
            self.edge_id,
            self.created_at,
            self.nonce,
            self.source,
            self.status,
            self.headers,
            self.chunk_size,
            self.size_hint,
        )

    def encode(self) -> bytes:
        return self.body + self.signature

    @property
    def content_id(self) -> bytes:
        """SHA-256 of the head's canonical (unsigned) bytes."""
        return self._content_id

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for n, v in self.headers if n == wanted), None)

    def statement(self, key: NodeKey, index: int, data: bytes) -> ChunkStatement:
        """Sign the statement for chunk ``index`` (edge side)."""
        if key.node_id != self.edge_id:
            raise WrongBinding("only the head's own edge signs its chunk statements")
        return self.statement_of(key, index, len(data), hashlib.sha256(data).digest())

    def statement_of(self, key: NodeKey, index: int, size: int, digest: bytes) -> ChunkStatement:
        """Sign the statement for chunk ``index`` of ``size`` bytes hashed as it streamed by."""
        if key.node_id != self.edge_id:
            raise WrongBinding("only the head's own edge signs its chunk statements")
        if not 0 < size <= self.chunk_size or index >= MAX_CHUNKS:
            raise MalformedMessage(f"chunk {index} of {size} bytes does not fit this manifest")
        body = _statement_body(self.content_id, index, size, digest)
        return ChunkStatement(self.content_id, index, size, digest, key.sign(body))

    def verify_statement(self, data: bytes) -> ChunkStatement:
        """Parse a chunk statement and check it was signed by this head's edge for it."""
        if len(data) != STATEMENT_SIZE:
            raise MalformedMessage(f"chunk statement must be {STATEMENT_SIZE} bytes")
        r = Reader(data, STATEMENT_MAGIC, "chunk statement")
        content_id, index, size, digest = r.fixed(32), r.u32(), r.u32(), r.fixed(32)
        signature = r.fixed(ED25519_SIG_SIZE)
        r.end()
        if content_id != self.content_id:
            raise WrongBinding("chunk statement is for another content id")
        if not 0 < size <= self.chunk_size or index >= MAX_CHUNKS:
            raise MalformedMessage(f"chunk statement {index} has impossible size {size}")
        self.edge_id.verify(data[:-ED25519_SIG_SIZE], signature, "chunk statement")
        return ChunkStatement(content_id, index, size, digest, signature)

    def seal(self, key: NodeKey, total_size: int, chunk_hashes: Sequence[bytes]) -> Seal:
        """Sign the seal once the response has ended (edge side)."""
        if key.node_id != self.edge_id:
            raise WrongBinding("only the head's own edge seals it")
        _check_totals(total_size, len(chunk_hashes), self.chunk_size)
        digest = chunk_list_digest(chunk_hashes)
        body = _seal_body(self.content_id, total_size, len(chunk_hashes), digest)
        return Seal(self.content_id, total_size, len(chunk_hashes), digest, key.sign(body))

    def verify_seal(self, data: bytes) -> Seal:
        """Parse a seal and check it was signed by this head's edge for it."""
        if len(data) != SEAL_SIZE:
            raise MalformedMessage(f"seal must be {SEAL_SIZE} bytes")
        r = Reader(data, SEAL_MAGIC, "seal")
        content_id, total_size, count, digest = r.fixed(32), r.u64(), r.u32(), r.fixed(32)
        signature = r.fixed(ED25519_SIG_SIZE)
        r.end()
        if content_id != self.content_id:
            raise WrongBinding("seal is for another content id")
        _check_totals(total_size, count, self.chunk_size)
        self.edge_id.verify(data[:-ED25519_SIG_SIZE], signature, "seal")
        return Seal(content_id, total_size, count, digest, signature)


@dataclass(frozen=True, slots=True)
class ChunkStatement:
    """The origin edge's signed word on one chunk: index, size and SHA-256."""

    content_id: bytes
    index: int
    size: int
    sha256: bytes
    signature: bytes

    def encode(self) -> bytes:
        return _statement_body(self.content_id, self.index, self.size, self.sha256) + self.signature

    def check(self, data: bytes) -> None:
        """Raise :class:`WrongBinding` unless ``data`` is exactly the chunk stated."""
        if len(data) != self.size:
            raise WrongBinding(f"chunk {self.index} is {len(data)} bytes, stated {self.size}")
        if hashlib.sha256(data).digest() != self.sha256:
            raise WrongBinding(f"chunk {self.index} does not match its stated SHA-256")


@dataclass(frozen=True, slots=True)
class Seal:
    """The origin edge's signed word that the content is complete."""

    content_id: bytes
    total_size: int
    chunk_count: int
    chunk_list_digest: bytes
    signature: bytes

    def encode(self) -> bytes:
        body = _seal_body(
            self.content_id, self.total_size, self.chunk_count, self.chunk_list_digest
        )
        return body + self.signature

    def chunk_length(self, index: int, chunk_size: int) -> int:
        """The exact size chunk ``index`` must have."""
        if not 0 <= index < self.chunk_count:
            raise MalformedMessage(f"chunk {index} is beyond the last ({self.chunk_count - 1})")
        return min(chunk_size, self.total_size - index * chunk_size)

    def check_chunk_list(self, chunk_hashes: Sequence[bytes]) -> None:
        """Raise :class:`WrongBinding` unless the ordered hash list is the sealed one."""
        if len(chunk_hashes) != self.chunk_count:
            raise WrongBinding(
                f"chunk list has {len(chunk_hashes)} entries, sealed {self.chunk_count}"
            )
        if chunk_list_digest(chunk_hashes) != self.chunk_list_digest:
            raise WrongBinding("chunk list does not match the sealed digest")


def chunk_list_digest(chunk_hashes: Iterable[bytes]) -> bytes:
    """SHA-256 over a tag and the ordered 32-byte chunk hashes."""
    h = hashlib.sha256(CHUNK_LIST_TAG)
    for digest in chunk_hashes:
        if len(digest) != 32:
            raise MalformedMessage("a chunk hash is 32 bytes")
        h.update(digest)
    return h.digest()


def _check_head_fields(
    status: int, headers: Sequence[tuple[str, str]], chunk_size: int, size_hint: int
) -> None:
    if not 100 <= status <= 599:
        raise MalformedMessage(f"HTTP status {status} out of range")
    _check_headers(headers, status)
    check_chunk_size(chunk_size)
    if size_hint != UNKNOWN_SIZE and size_hint > chunk_size * MAX_CHUNKS:
        raise MalformedMessage(f"size {size_hint} needs more than {MAX_CHUNKS} chunks")


def _check_totals(total_size: int, count: int, chunk_size: int) -> None:
    if count > MAX_CHUNKS or count != -(-total_size // chunk_size):
        raise MalformedMessage(
            f"{count} chunks cannot hold {total_size} bytes at chunk size {chunk_size}"
        )


def _head_body(
    edge_id: NodeId,
    created_at: int,
    nonce: bytes,
    source: Source,
    status: int,
    headers: Sequence[tuple[str, str]],
    chunk_size: int,
    size_hint: int,
) -> bytes:
    _check_head_fields(status, headers, chunk_size, size_hint)
    w = Writer(HEAD_MAGIC).fixed(edge_id.raw, NODE_ID_SIZE).u64(created_at)
    w.fixed(nonce, NONCE_SIZE)
    write_source(w, source)
    w.u16(status).u16(len(headers))
    for name, value in headers:
        w.text16(name).text16(value)
    return w.u32(chunk_size).u64(size_hint).getvalue()


def _statement_body(content_id: bytes, index: int, size: int, digest: bytes) -> bytes:
    w = Writer(STATEMENT_MAGIC).fixed(content_id, 32).u32(index).u32(size)
    return w.fixed(digest, 32).getvalue()


def _seal_body(content_id: bytes, total_size: int, count: int, digest: bytes) -> bytes:
    w = Writer(SEAL_MAGIC).fixed(content_id, 32).u64(total_size).u32(count)
    return w.fixed(digest, 32).getvalue()
