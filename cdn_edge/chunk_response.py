"""A chunk response whose body goes from its file to the socket with sendfile(2), and
the answer for content that failed.

The bytes never pass through Python: no read into memory, no copy into the
socket, which per 256 KiB chunk cost more than everything else the edge does
to serve it. Unlike aiohttp's ``FileResponse`` it adds no validators and
honours no ``Range``: a chunk is priced and paid for whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import BinaryIO

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter

from cdn_edge.problems import problem_response
from requester.chunk_client import CONTENT_STATE_HEADER


def content_failed(status: int, code: str, detail: str) -> web.Response:
    """The answer to every chunk request for content whose fetch failed for good: the
    content's own problem (``502 origin_truncated``...), marked ``Atlas-Content-State:
    failed`` so requesters stop asking at once instead of waiting for chunks that will
    never come. Nothing is charged for it."""
    response = problem_response(status, code, detail)
    response.headers[CONTENT_STATE_HEADER] = "failed"
    return response


class ChunkFileResponse(web.StreamResponse):
    """Sends ``size`` bytes of ``file`` (an open chunk file, closed once sent)."""

    def __init__(self, file: BinaryIO, size: int, headers: dict[str, str]) -> None:
        super().__init__(headers=headers)
        self._file = file
        self.content_length = size

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self.prepared:
            return await super().prepare(request)
        try:
            writer = await super().prepare(request)  # the headers go out now
            if request.method != hdrs.METH_HEAD and self.content_length:
                await send_file(request, self._file, self.content_length)
            await super().write_eof()
            return writer
        finally:
            self._file.close()


async def send_file(request: web.BaseRequest, file: BinaryIO, size: int) -> None:
    """Send ``size`` bytes of ``file`` from offset 0 on the request's socket, after what
    was written before it (the headers, a run's frame header)."""
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("connection lost")
    sent = 0
    sock = transport.get_extra_info("socket")
    # Fast path: when everything before (the headers) is already with the kernel, one
    # sendfile call on the plain-TCP socket usually sends the whole chunk, skipping
    # asyncio's sendfile machinery (pause reading, waiters, resume reading), which cost
    # about a quarter of the free path's chunks per second in loadtest/edge/.
    plain = sock is not None and transport.get_extra_info("sslcontext") is None
    if plain and not transport.get_write_buffer_size():
        with contextlib.suppress(BlockingIOError, InterruptedError):
            sent = os.sendfile(sock.fileno(), file.fileno(), 0, size)
    if sent < size:  # the socket buffer filled up: let asyncio wait for room
        await asyncio.get_running_loop().sendfile(transport, file, sent, size - sent)
