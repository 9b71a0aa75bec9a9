"""A run's body read from the socket straight into frame buffers, with no copy on the way.

aiohttp hands a body on in the pieces each socket read gave (64 to 256 KiB), each copied
out of its parser, and ``readexactly`` joins them into a new object: per byte, two copies
and the allocation churn of three objects, plus Python work per piece. A held run's 200
states its ``Content-Length``, and its bytes are all frames, so once aiohttp has read the
status and headers, :class:`RunSocket` takes the connection's transport over (its public
``set_protocol``) and receives each frame's header, then its body, with ``recv_into``
straight into the bytes object handed on. A body read to its end gives the connection back
to aiohttp's pool; one left early (a lie, a timeout) closes it. A streamed (chunked) run,
or a TLS or otherwise unusual transport, is read through aiohttp as before.
"""

from __future__ import annotations

import asyncio
import io
from typing import Protocol

import aiohttp

from requester.chunk_request import CHUNK_TIMEOUT

SILENCE = CHUNK_TIMEOUT.sock_read
"""Seconds without a byte after which a run is given up, as for a chunk request."""


class FrameSource(Protocol):
    """Where a run's frames are read from: exactly ``n`` bytes, or the connection failed."""

    async def readexactly(self, n: int) -> bytes: ...


class RunSocket(asyncio.BufferedProtocol):
    """Reads exactly the bytes asked for, straight into the object returned, from a
    taken-over transport.

    Nothing is read while nothing is asked: the transport is paused between reads, so the
    bytes not yet wanted wait in the socket (TCP flow control stops the sender) and memory
    is only what the caller asked for."""

    def __init__(self, response: aiohttp.ClientResponse, transport: asyncio.Transport,
                 length: int, early: bytes, ahead: int) -> None:  # fmt: skip
        self._response = response
        self._transport = transport
        self._aiohttp = transport.get_protocol()
        self._left = length - len(early)
        """Body bytes still in the socket."""
        self._early = early
        """Body bytes read but not asked for yet (aiohttp's, read with the headers)."""
        self._ahead = ahead
        """Reads shorter than this (a frame's first bytes) read this much if the body has it."""
        self._spare = bytearray()
        self._target: memoryview | None = None
        self._filled = 0
        self._waiter: asyncio.Future[None] | None = None
        self._ended: Exception | None = None
        """Why no more bytes come: EOFError for the peer's end, else the connection's error."""
        self._lost = False
        """Whether the transport called :meth:`connection_lost` on this protocol."""
        transport.pause_reading()
        transport.set_protocol(self)

    @classmethod
    def take_over(cls, response: aiohttp.ClientResponse, ahead: int) -> RunSocket | None:
        """The run's body read from the socket, or None where it must be read through
        aiohttp: no ``Content-Length`` (a streamed run), TLS, or no transport at hand."""
        length = response.content_length
        connection = response.connection
        transport = None if connection is None else connection.transport
        if (length is None or "Transfer-Encoding" in response.headers or transport is None
                or transport.is_closing()
                or transport.get_extra_info("sslcontext") is not None):  # fmt: skip
            return None
        early = response.content.read_nowait(-1)
        if len(early) > length:
            return None  # more than the body: not an answer to take over; aiohttp decides
        return cls(response, transport, length, early, ahead)

    def release(self) -> None:
        """Give the transport back to aiohttp. A body read to its end leaves the connection
        for the next request (aiohttp's payload is marked ended, which releases it to the
        pool; the next request parses its answer afresh); any other is closed."""
        self._target = None
        transport = self._transport
        if transport.get_protocol() is not self:
            self._response.close()
            return
        transport.set_protocol(self._aiohttp)
        if self._lost:  # aiohttp must learn of it: the transport will not say it again
            self._aiohttp.connection_lost(None if isinstance(self._ended, EOFError) else
                                          self._ended)  # fmt: skip
        if self._left or self._early or self._ended is not None or transport.is_closing():
            self._response.close()
            return
        transport.resume_reading()
        self._response.content.feed_eof()

    async def readexactly(self, n: int) -> bytes:
        """The next ``n`` body bytes; :class:`asyncio.IncompleteReadError` if the body or the
        connection ends first, ``aiohttp.ServerDisconnectedError`` on a reset."""
        early = self._early
        if n <= len(early):
            self._early = early[n:]
            return early[:n]
        if n - len(early) > self._left:
            raise asyncio.IncompleteReadError(early, n)
        if n < self._ahead:  # a frame header: read a whole one, what is not asked stays early
            want = min(self._ahead, len(early) + self._left)
            data = await self._read(want, early)
            self._early = data[n:]
            return data[:n]
        self._early = b""
        return await self._read(n, early)

    async def _read(self, n: int, early: bytes) -> bytes:
        """``n`` bytes: ``early`` and then the socket's, received in place into the bytes
        object returned. A BytesIO sized to ``n`` lends its own bytes object to write into
        (``getbuffer``) and, once that view is released, hands the very object out
        (``getvalue`` copies nothing in CPython when the sizes match and no view is left)."""
        buffer = io.BytesIO()
        buffer.seek(n - 1)
        buffer.write(b"\0")
        with buffer.getbuffer() as view:
            view[: len(early)] = early
            await self._fill(view, len(early))
        return buffer.getvalue()

    async def _fill(self, view: memoryview, filled: int) -> None:
        if self._ended is not None:
            raise self._failure(view, filled)
        self._target, self._filled = view, filled
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        self._transport.resume_reading()
        try:
            async with asyncio.timeout(SILENCE):
                await waiter
        finally:
            self._target = None
            self._transport.pause_reading()

    def _failure(self, view: memoryview, filled: int) -> Exception:
        if isinstance(self._ended, EOFError):
            return asyncio.IncompleteReadError(bytes(view[:filled]), len(view))
        return aiohttp.ServerDisconnectedError(f"run connection lost: {self._ended}")

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._target is None:  # nothing asked (the transport is paused then): kept aside
            self._spare = bytearray(64 * 1024)
            return memoryview(self._spare)
        return self._target[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        self._left -= nbytes
        target = self._target
        if target is None:  # read into the spare buffer: kept for the next ask
            self._early += self._spare[:nbytes]
            self._transport.pause_reading()
            return
        self._filled += nbytes
        if self._filled == len(target):
            self._target = None
            self._transport.pause_reading()
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)

    def eof_received(self) -> bool:
        self._end(EOFError("the run ended mid-frame"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._end(exc if exc is not None else EOFError("the run ended mid-frame"))

    def _end(self, exc: Exception) -> None:
        if self._ended is None:
            self._ended = exc
        waiter, target = self._waiter, self._target
        if waiter is not None and not waiter.done():
            waiter.set_exception(self._failure(target or memoryview(b""), self._filled))
