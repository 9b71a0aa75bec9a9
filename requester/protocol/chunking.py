"""Cutting a byte stream into chunks (edge side) and checking them (requester side).

Both classes are fed bytes or messages and return results; neither reads a
socket or a file, and neither holds more than one chunk of data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from requester.protocol.errors import MalformedMessage, WrongBinding
from requester.protocol.identity import NodeKey
from requester.protocol.manifest import ChunkStatement, ManifestHead, Seal
from requester.protocol.publishing import ChunkCutter, ChunkSigner, Cut


@dataclass(frozen=True, slots=True)
class SignedChunk:
    """A complete chunk and the statement that lets anyone verify it."""

    statement: ChunkStatement
    data: bytes


class ContentPublisher:
    """Edge side: turns a response body, fed in pieces of any size, into signed chunks.

    ``feed`` returns the chunks completed by that piece, each with its signed
    statement, so they can be stored and served before the body has ended.
    ``finish`` returns the last partial chunk (if any) and the seal. It is the
    streaming publisher (:mod:`requester.protocol.publishing`, which the edge drives
    part by part) with each chunk's parts joined, for callers that want whole chunks.
    """

    def __init__(self, key: NodeKey, head: ManifestHead) -> None:
        self.head = head
        self._cutter = ChunkCutter(head.chunk_size)
        self._signer = ChunkSigner(key, head)
        self._buffer = bytearray()
        self._sealed = False

    @property
    def total_size(self) -> int:
        """Bytes of the chunks completed so far."""
        return self._signer.total

    def feed(self, data: bytes) -> list[SignedChunk]:
        if self._sealed:
            raise MalformedMessage("content already sealed")
        return [chunk for cut in self._cutter.feed(data) for chunk in self._take(cut)]

    def finish(self) -> tuple[list[SignedChunk], Seal]:
        if self._sealed:
            raise MalformedMessage("content already sealed")
        last = self._cutter.finish()
        out = self._take(last) if last is not None else []
        self._sealed = True
        return out, self._signer.seal()

    def _take(self, cut: Cut) -> list[SignedChunk]:
        statement = self._signer.take(cut)
        self._buffer += cut.data
        if statement is None:
            return []
        data = bytes(self._buffer)
        self._buffer.clear()
        return [SignedChunk(statement, data)]


@dataclass(slots=True)
class ContentVerifier:
    """Requester side: checks every chunk against the signed head before it is used.

    Chunks may arrive in any order and from any provider. A chunk passes only
    if its statement was signed by the head's edge and its bytes hash to the
    stated SHA-256. Once the seal is known, chunk sizes and the count are
    checked against it, and :meth:`check_complete` confirms the hash list.
    """

    head: ManifestHead
    seal: Seal | None = None
    _hashes: dict[int, bytes] = field(default_factory=dict)
    _sizes: dict[int, int] = field(default_factory=dict)
    _last_index: int = -1
    _short_index: int | None = None

    def accept_seal(self, data: bytes) -> Seal:
        seal = self.head.verify_seal(data)
        if self.seal is not None and seal.encode() != self.seal.encode():
            raise WrongBinding("edge signed two different seals for one content id")
        for index, size in self._sizes.items():
            if index >= seal.chunk_count:
                raise WrongBinding(f"chunk {index} was stated but the seal ends before it")
            expected = seal.chunk_length(index, self.head.chunk_size)
            if size != expected:
                raise WrongBinding(f"chunk {index} stated {size} bytes, seal implies {expected}")
        self.seal = seal
        return seal

    def verify_chunk(self, statement_bytes: bytes, data: bytes) -> ChunkStatement:
        """Return the statement if ``data`` is the right chunk; raise otherwise."""
        statement = self.head.verify_statement(statement_bytes)
        self._check_place(statement)
        statement.check(data)
        return self._record(statement)

    def check_alone(self, statement_bytes: bytes, data: bytes) -> ChunkStatement:
        """The statement's signature and the chunk's hash, checked against the head only.

        This is the costly part of :meth:`verify_chunk` (Ed25519 and SHA-256, both of which
        release the GIL) and reads nothing that changes, so it may run in a worker thread
        while the caller reads the next chunk; :meth:`admit` then completes the check."""
        statement = self.head.verify_statement(statement_bytes)
        statement.check(data)
        return statement

    def admit(self, statement: ChunkStatement) -> ChunkStatement:
        """Complete :meth:`check_alone`: the chunk's place against the seal and every chunk
        verified before it, then record it."""
        self._check_place(statement)
        return self._record(statement)

    def _check_place(self, statement: ChunkStatement) -> None:
        if self.seal is not None:
            expected = self.seal.chunk_length(statement.index, self.head.chunk_size)
            if statement.size != expected:
                raise WrongBinding(
                    f"chunk {statement.index} stated {statement.size} bytes, "
                    f"seal implies {expected}"
                )
        else:
            self._check_short_chunk_is_last(statement)
        known = self._hashes.get(statement.index)
        if known is not None and known != statement.sha256:
            raise WrongBinding(f"edge stated two different hashes for chunk {statement.index}")

    def _record(self, statement: ChunkStatement) -> ChunkStatement:
        self._hashes[statement.index] = statement.sha256
        self._sizes[statement.index] = statement.size
        self._last_index = max(self._last_index, statement.index)
        if statement.size < self.head.chunk_size:
            self._short_index = statement.index
        return statement

    def check_complete(self) -> Seal:
        """Raise unless the seal is known and every chunk it lists has been verified."""
        if self.seal is None:
            raise MalformedMessage("content is not sealed yet")
        missing = self.seal.chunk_count - len(self._hashes)
        if missing:
            raise MalformedMessage(f"{missing} chunks not verified yet")
        self.seal.check_chunk_list([self._hashes[i] for i in range(self.seal.chunk_count)])
        return self.seal

    def _check_short_chunk_is_last(self, statement: ChunkStatement) -> None:
        """Before the seal, only the last chunk may be short: refuse any contradiction."""
        short = statement.size < self.head.chunk_size
        if (short and statement.index < self._last_index) or (
            self._short_index is not None and statement.index > self._short_index
        ):
            raise WrongBinding(f"chunk {statement.index} contradicts where the content ends")
