"""Reading a chunk run: frames verified one by one as they arrive, on both cores.

Split from :mod:`requester.chunk_client`, which decides when to ask for a run and what
to pay ahead; the wire format is :mod:`requester.protocol.chunk_run`. Each frame is read
exactly (its header states its length, bounded by the chunk size), then its signature
and hash are checked in a worker thread (Ed25519 and SHA-256 release the GIL) while the
loop reads the next frame; frames are handed on in order, each only once it verified.
Memory: one frame being read and at most :data:`VERIFYING` being checked; with a
:class:`Room`, no frame is read before the caller has room for it. A held run (its answer
states a ``Content-Length``) is read straight from the socket (:mod:`requester.run_socket`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import zstandard

from requester.chunk_checks import Delivered, bad_chunk
from requester.chunk_faults import ProviderFault, ProviderUnreachable
from requester.chunk_request import CHUNK_TIMEOUT
from requester.protocol import ContentVerifier, ProtocolError, b64url_encode
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
from requester.protocol.manifest import ChunkStatement
from requester.provider_answer import inflate, read_capped
from requester.run_socket import FrameSource, RunSocket

VERIFYING = 2
"""Frames checked in worker threads at once, behind the one being read."""
THREAD_FROM = 64 * 1024
"""Smaller chunks are checked on the loop: the hand-off to a thread costs more than it saves."""
MAX_PROBLEM = 64 * 1024
RUN_TIMEOUT = aiohttp.ClientTimeout(
    total=None, sock_connect=CHUNK_TIMEOUT.sock_connect, sock_read=CHUNK_TIMEOUT.sock_read
)
"""No bound on a whole run (64 chunks at a slow provider's rate may take minutes); the same
bound on silence as a chunk request (:data:`requester.chunk_request.CHUNK_TIMEOUT`)."""


@dataclass(frozen=True)
class RunAnswer:
    """A run request's outcome: a problem answer (``trailer`` None), or a 200's trailer."""

    status: int
    body: bytes = b""
    headers: dict[str, str] | None = None
    trailer: RunTrailer | None = None


Deliver = Callable[[int, Delivered], None]
"""Called with each chunk's index and the chunk, verified, in order."""


class Room(Protocol):
    """Asked before a frame is read: whether the caller has room for chunk ``index`` now,
    else awaited until something changed. A run may ask further ahead than the caller holds;
    what is not read yet waits in the socket, and TCP flow control stops the provider."""

    def fits(self, index: int) -> bool: ...

    async def changed(self) -> None: ...


_Checked = tuple[ChunkStatement, bytes]
"""A frame's statement, checked, and its chunk's bytes (inflated if sent compressed)."""


async def request_run(session: aiohttp.ClientSession, provider: str, url: str,
                      headers: dict[str, str], verifier: ContentVerifier, first: int,
                      count: int, deliver: Deliver, room: Room | None = None
                      ) -> RunAnswer:  # fmt: skip
    """Ask ``provider`` for the run at ``url`` and hand each verified chunk to ``deliver``,
    in order. A refused or reset connection is :class:`ProviderUnreachable` (the chunks
    delivered before it stay delivered); a bad frame or a lying trailer a
    :class:`ProviderFault`."""
    try:
        async with session.get(
            url, headers=headers, timeout=RUN_TIMEOUT, auto_decompress=False
        ) as resp:
            if resp.status != 200:
                body = await read_capped(resp, MAX_PROBLEM)
                return RunAnswer(resp.status, body, dict(resp.headers))
            direct = RunSocket.take_over(resp, FRAME_HEADER_SIZE)
            try:
                source: FrameSource = resp.content if direct is None else direct
                reader = _RunReader(source, provider, verifier, first, count, deliver, room)
                return RunAnswer(200, trailer=await reader.read())
            finally:
                if direct is not None:
                    direct.release()
    except TimeoutError as exc:
        raise ProviderFault(provider, f"unreachable: {type(exc).__name__} {exc}") from exc
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:  # refused, reset
        raise ProviderUnreachable(provider, f"unreachable: {type(exc).__name__} {exc}") from exc
    except asyncio.IncompleteReadError as exc:
        raise ProviderUnreachable(provider, "unreachable: the run ended mid-frame") from exc
    except aiohttp.ClientError as exc:
        raise ProviderFault(provider, f"unreachable: {type(exc).__name__} {exc}") from exc


class _RunReader:
    def __init__(self, stream: FrameSource, provider: str, verifier: ContentVerifier,
                 first: int, count: int, deliver: Deliver,
                 room: Room | None = None) -> None:  # fmt: skip
        self._stream = stream
        self._provider = provider
        self._verifier = verifier
        self._next = first
        self._last = first + count
        self._deliver = deliver
        self._room = room
        self._charged = 0
        self._frames = 0
        self._lied = False
        self._checking: deque[tuple[FrameHeader, bytes, asyncio.Future[_Checked]]] = deque()

    async def read(self) -> RunTrailer:
        try:
            while True:
                await self._wait_room()
                prefix = await self._stream.readexactly(PREFIX_SIZE)
                if self._kind(prefix) != CHUNK:
                    break
                await self._frame(prefix)
        except Exception:
            if not self._lied:  # a broken connection: the frames read before it are good
                await self._drain()
            raise
        await self._drain()
        return await self._trailer(prefix)

    async def _wait_room(self) -> None:
        """Until the caller has room for the next frame; meanwhile every frame read is handed
        on (the caller may be waiting for one of them to make room)."""
        room = self._room
        while room is not None and self._next < self._last and not room.fits(self._next):
            await self._drain()
            await room.changed()

    async def _drain(self) -> None:
        """Hand on every frame read so far, each once verified."""
        try:
            while self._checking:
                await self._hand_on()
        finally:
            for _, _, future in self._checking:
                future.cancel()

    def _kind(self, prefix: bytes) -> int:
        try:
            return frame_kind(prefix)
        except ProtocolError as exc:
            raise ProviderFault(self._provider, f"bad run: {exc.message}") from exc

    async def _frame(self, prefix: bytes) -> None:
        rest = await self._stream.readexactly(FRAME_HEADER_SIZE - PREFIX_SIZE)
        try:
            frame = decode_frame_header(prefix + rest, self._verifier.head.chunk_size)
        except ProtocolError as exc:
            raise ProviderFault(self._provider, f"bad run: {exc.message}") from exc
        if frame.index != self._next or frame.index >= self._last:
            raise ProviderFault(self._provider, f"run sent chunk {frame.index} for {self._next}")
        self._next += 1
        wire = await self._stream.readexactly(frame.wire_len)
        if len(self._checking) >= VERIFYING:
            await self._hand_on()
        loop = asyncio.get_running_loop()
        if frame.wire_len >= THREAD_FROM:
            future = loop.run_in_executor(None, self._check, frame, wire)
        else:
            future = loop.create_future()
            try:
                future.set_result(self._check(frame, wire))
            except Exception as exc:  # raised where the frame is handed on, in order
                future.set_exception(exc)
        self._checking.append((frame, wire, future))

    def _check(self, frame: FrameHeader, wire: bytes) -> _Checked:
        body = inflate(wire, self._verifier.head.chunk_size) if frame.zstd else wire
        return self._verifier.check_alone(frame.statement, body), body

    async def _hand_on(self) -> None:
        frame, wire, future = self._checking.popleft()
        try:
            checked, body = await future
            statement = self._verifier.admit(checked)
        except (ProtocolError, zstandard.ZstdError) as exc:
            self._lied = True  # no frame after this one is handed on
            raise bad_chunk(self._provider, self._verifier, frame.index, wire,
                            b64url_encode(frame.statement), exc) from exc  # fmt: skip
        if statement.index != frame.index:
            self._lied = True
            raise ProviderFault(self._provider, f"sent chunk {statement.index} for {frame.index}")
        charged = frame.price if frame.paid_by != "free" else 0
        self._charged += frame.price
        self._frames += 1
        delivered = Delivered(body, statement.sha256, frame.statement, charged, frame.wire_len,
                              frame.paid_by, 0, frame.lane)  # fmt: skip
        self._deliver(frame.index, delivered)

    async def _trailer(self, prefix: bytes) -> RunTrailer:
        rest = await self._stream.readexactly(TRAILER_HEADER_SIZE - PREFIX_SIZE)
        try:
            trailer, detail_len = decode_trailer(prefix + rest)
        except ProtocolError as exc:
            raise ProviderFault(self._provider, f"bad run trailer: {exc.message}") from exc
        trailer = with_detail(trailer, await self._stream.readexactly(detail_len))
        if (trailer.frames, trailer.charged) != (self._frames, self._charged):
            raise ProviderFault(
                self._provider,
                f"run trailer states {trailer.frames} frames for {trailer.charged}, "
                f"but {self._frames} came for {self._charged}",
            )
        return trailer
