"""Reading chunk runs (``GET /v1/run/...``) by hand in edge tests, with the protocol's codec:
every frame checked against the content's head as it is decoded."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import zstandard

from requester.protocol import ContentVerifier, ManifestHead
from requester.protocol.chunk_run import (
    CHUNK,
    FRAME_HEADER_SIZE,
    PREFIX_SIZE,
    TRAILER_HEADER_SIZE,
    FrameHeader,
    RunTrailer,
    decode_frame_header,
    decode_trailer,
    frame_kind,
    with_detail,
)

LIMIT = 1 << 20


@dataclass
class Run:
    status: int
    headers: dict[str, str]
    frames: list[FrameHeader]
    data: bytes
    """The frames' chunk bytes, decoded (zstd inflated), in order."""
    trailer: RunTrailer | None
    problem: bytes = b""
    """The body of an answer other than 200."""


def run_url(edge: str, content_id: str, first: int, count: int | str) -> str:
    return f"{edge}/v1/run/{content_id}/{first}?count={count}"


def decode_run(body: bytes, head: ManifestHead, first: int) -> tuple[list[FrameHeader], bytes,
                                                                      RunTrailer]:  # fmt: skip
    """Frames, their bytes and the trailer of a whole run's body; each frame verified (its
    statement signed by the head's edge, for the index expected, hashing to its bytes)."""
    verifier = ContentVerifier(head)
    frames: list[FrameHeader] = []
    data = bytearray()
    at = 0
    while True:
        if frame_kind(body[at : at + PREFIX_SIZE]) != CHUNK:
            trailer, detail_len = decode_trailer(body[at : at + TRAILER_HEADER_SIZE])
            at += TRAILER_HEADER_SIZE
            trailer = with_detail(trailer, body[at : at + detail_len])
            assert at + detail_len == len(body), "bytes after the trailer"
            return frames, bytes(data), trailer
        header = decode_frame_header(body[at : at + FRAME_HEADER_SIZE], head.chunk_size)
        at += FRAME_HEADER_SIZE
        wire = body[at : at + header.wire_len]
        assert len(wire) == header.wire_len, "a frame cut short"
        at += header.wire_len
        chunk = zstandard.ZstdDecompressor().decompress(wire, max_output_size=LIMIT) if (
            header.zstd) else wire  # fmt: skip
        assert header.index == first + len(frames), (header.index, first, len(frames))
        assert verifier.verify_chunk(header.statement, chunk).index == header.index
        frames.append(header)
        data += chunk


async def get_run(session: aiohttp.ClientSession, edge: str, content_id: str, first: int,
                  count: int, head: ManifestHead,
                  headers: dict[str, str] | None = None) -> Run:  # fmt: skip
    """One run request, read whole and decoded (a problem's body kept when not 200)."""
    async with session.get(
        run_url(edge, content_id, first, count), headers=headers or {}, auto_decompress=False
    ) as r:
        body = await r.read()
        if r.status != 200:
            return Run(r.status, dict(r.headers), [], b"", None, body)
        frames, data, trailer = decode_run(body, head, first)
        return Run(r.status, dict(r.headers), frames, data, trailer)
