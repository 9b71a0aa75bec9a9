"""The body of a chunk run (``GET /v1/run/...``): frames, each a header and a chunk's
bytes, then the trailer (requester/protocol/chunk_run.py, docs/protocol.md).

Two framings. When the edge knows the whole body before the first frame (every chunk
of the run held, sent as stored, nothing that may stop the run early), the response has
a ``Content-Length`` and each body goes from its chunk file to the socket with
sendfile(2), as a ``/v1/chunk`` answer does: the bytes never pass through Python.
Otherwise (chunks still arriving, zstd frames, a free allowance that may run out) the
length is unknown, and frames go out in chunked transfer encoding, written from memory.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass, field
from typing import BinaryIO

from aiohttp import web

from cdn_edge.chunk_response import send_file
from requester.protocol.chunk_run import (
    RUN_CONTENT_TYPE,
    FrameHeader,
    RunEnd,
    RunTrailer,
    run_length,
)


@dataclass
class RunTally:
    """What a run has sent so far: the trailer's numbers, and what the refund is owed."""

    frames: int = 0
    charged: int = 0
    sizes: list[int] = field(default_factory=list)


class RunWriter:
    """Writes one run's frames on ``request``'s connection, in either framing."""

    def __init__(self, request: web.Request, paid_by: str, sizes: list[int] | None) -> None:
        """``sizes``: the wire sizes of every frame, known ahead (Content-Length and
        sendfile), or None (chunked encoding)."""
        self._request = request
        self.sized = sizes is not None
        self.response = web.StreamResponse(
            headers={
                "Content-Type": RUN_CONTENT_TYPE,
                "Cache-Control": "private, no-store",
                "Atlas-Paid-By": paid_by,
            }
        )
        if sizes is not None:
            self.response.content_length = run_length(sizes)
        else:
            self.response.enable_chunked_encoding()
        self.tally = RunTally()
        self.refunded = False
        """Set once what the payment ahead left over was returned (before the trailer)."""
        self._corked = False

    async def start(self) -> None:
        await self.response.prepare(self._request)
        if self.sized:
            self._cork(True)

    async def frame(self, header: FrameHeader, body: BinaryIO | bytes) -> None:
        """Send one frame: ``body`` is the chunk's open file (sized runs) or its wire bytes.
        Counted in the tally only once all of it is with the kernel."""
        self._check_open()
        if isinstance(body, bytes):
            await self.response.write(header.encode() + body)
        else:
            await self.response.write(header.encode())
            self._check_open()
            await send_file(self._request, body, header.wire_len)
        self.tally.frames += 1
        self.tally.charged += header.price
        self.tally.sizes.append(header.wire_len)

    async def finish(self, reason: RunEnd, detail: str = "") -> None:
        """The trailer, then the end of the response."""
        self._check_open()
        await self.response.write(
            RunTrailer(reason, self.tally.frames, self.tally.charged, detail).encode()
        )
        self._cork(False)
        await self.response.write_eof()

    def _cork(self, on: bool) -> None:
        """TCP_CORK on a sized run's socket while its frames go: each frame header then leaves
        in one segment with the start of the chunk that sendfile adds, not as a small segment
        (and a wake-up of the reader) of its own. Off (the rest is pushed) when the run ends."""
        transport = self._request.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None or self._corked == on:
            return
        self._corked = on
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1 if on else 0)

    def close(self) -> None:
        """However the run ended: nothing stays corked on a connection that is kept."""
        self._cork(False)

    def _check_open(self) -> None:
        """Raise once the requester is gone: nothing more is sent, nothing more charged."""
        transport = self._request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the requester closed the connection")
