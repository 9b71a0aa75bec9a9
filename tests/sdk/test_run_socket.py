"""A held run's body read straight from the socket (requester/run_socket.py): the hostile runs
of test_run_reader.py served with a ``Content-Length``, as an edge serves a run it holds,
and what becomes of the connection after each (an aiohttp server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from requester.chunk_checks import Delivered
from requester.chunk_faults import ProviderFault, ProviderUnreachable
from requester.chunk_runs import request_run
from requester.protocol import ContentVerifier, ManifestHead
from requester.protocol.chunk_run import RunEnd, RunTrailer
from tests.local_app import serving
from tests.sdk.test_run_reader import BODIES, BODY, CONTENT, HEAD, SMALL_HEAD

RUNS = {**BODIES, "good-and-more": BODIES["good"] + b"\0" * 100, "slow": BODIES["good"]}
"""test_run_reader.py's runs, and a good one with bytes past its trailer, and one sent
slowly (its first frame, then the rest 0.2 s later)."""


@dataclass
class Provider:
    url: str
    peers: list[int] = field(default_factory=list)
    """The connection each request came on (its client port), in order."""


def _port(request: web.Request) -> int:
    assert request.transport is not None
    return int(request.transport.get_extra_info("peername")[1])


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    seen = Provider("")

    async def run(request: web.Request) -> web.StreamResponse:
        seen.peers.append(_port(request))
        name = request.match_info["name"]
        body = RUNS[name]
        response = web.StreamResponse()
        response.content_length = len(body) + (1000 if name == "cut" else 0)
        await response.prepare(request)
        if name == "slow":  # the first frame, then the rest a moment later
            await response.write(body[:200])
            await asyncio.sleep(0.2)
            await response.write(body[200:])
        else:
            await response.write(body)
        if name == "cut":
            assert request.transport is not None
            request.transport.close()  # the connection breaks mid-frame
            return response
        await response.write_eof()
        return response

    async def ping(request: web.Request) -> web.Response:
        seen.peers.append(_port(request))
        return web.Response(text="pong")

    app = web.Application()
    app.router.add_get("/run/{name}", run)
    app.router.add_get("/ping", ping)
    async with serving(app) as seen.url:
        yield seen


async def _read(session: aiohttp.ClientSession, provider: Provider, name: str,
                head: ManifestHead = HEAD, count: int = 3) -> tuple[list[int], object]:  # fmt: skip
    got: list[int] = []

    def deliver(index: int, delivered: Delivered) -> None:
        if head is HEAD:
            st = CONTENT["statements"][index]
            assert delivered.data == BODY[st["offset"] : st["offset"] + st["size"]]
            assert type(delivered.data) is bytes
        got.append(index)

    url = f"{provider.url}/run/{name}"
    try:
        answer = await request_run(session, provider.url, url, {}, ContentVerifier(head), 0,
                                   count, deliver)  # fmt: skip
    except (ProviderFault, ProviderUnreachable) as exc:
        return got, exc
    return got, answer.trailer


async def _ping(session: aiohttp.ClientSession, provider: Provider) -> None:
    async with session.get(f"{provider.url}/ping") as response:
        assert await response.text() == "pong"


@pytest.mark.parametrize("name", ["good", "slow"])
async def test_a_run_read_to_its_end_leaves_its_connection_for_the_next_request(
    provider: Provider, name: str
) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            got, trailer = await _read(session, provider, name)
            assert got == [0, 1, 2]
            assert trailer == RunTrailer(RunEnd.COMPLETE, 3, 21)
        await _ping(session, provider)
    assert len(provider.peers) == 3 and len(set(provider.peers)) == 1


async def test_bytes_past_the_trailer_close_the_connection(provider: Provider) -> None:
    async with aiohttp.ClientSession() as session:
        got, trailer = await _read(session, provider, "good-and-more")
        assert got == [0, 1, 2] and trailer == RunTrailer(RunEnd.COMPLETE, 3, 21)
        await _ping(session, provider)
    assert provider.peers[0] is not provider.peers[1]


async def test_hostile_runs_with_a_length_are_judged_as_streamed_ones(provider: Provider) -> None:
    """Each case of test_run_reader.py, with the same outcome, and the session still answers
    after them (a run left before the end of its body closes its connection)."""
    async with aiohttp.ClientSession() as session:
        got, exc = await _read(session, provider, "bad-second")
        assert got == [0]
        assert isinstance(exc, ProviderFault) and "bad chunk 1" in exc.reason
        got, exc = await _read(session, provider, "lie-then-more", SMALL_HEAD, 6)
        assert got == [0, 1]
        assert isinstance(exc, ProviderFault) and "bad chunk 2" in exc.reason
        got, exc = await _read(session, provider, "skips")
        assert got == [0]
        assert isinstance(exc, ProviderFault) and "run sent chunk 2 for 1" in exc.reason
        got, exc = await _read(session, provider, "lying-trailer")
        assert got == [0, 1, 2]
        assert isinstance(exc, ProviderFault) and "states 3 frames for 1" in exc.reason
        got, exc = await _read(session, provider, "cut")
        assert got == [0]
        assert isinstance(exc, ProviderUnreachable)
        got, trailer = await _read(session, provider, "ended")
        assert got == [0]
        assert trailer == RunTrailer(RunEnd.END, 1, 7, "ends here")
        got, exc = await _read(session, provider, "garbage")
        assert got == []
        assert isinstance(exc, ProviderFault) and "bad run" in exc.reason
        await _ping(session, provider)


class _Room:
    """Room for chunk 0 only, until the test opens the rest."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.asked: list[int] = []

    def fits(self, index: int) -> bool:
        self.asked.append(index)
        return index == 0 or self.open.is_set()

    async def changed(self) -> None:
        await self.open.wait()


async def test_a_frame_is_read_only_when_the_caller_has_room_for_it(provider: Provider) -> None:
    room = _Room()
    got: list[int] = []
    verifier = ContentVerifier(HEAD)
    async with aiohttp.ClientSession() as session:
        reading = asyncio.create_task(request_run(
            session, provider.url, f"{provider.url}/run/good", {}, verifier, 0, 3,
            lambda index, _: got.append(index), room))  # fmt: skip
        await asyncio.sleep(0.3)
        assert got == [0] and not reading.done()  # frame 0 handed on; frame 1 waits
        room.open.set()
        answer = await reading
    assert got == [0, 1, 2] and answer.trailer == RunTrailer(RunEnd.COMPLETE, 3, 21)
    assert room.asked[:2] == [0, 1]
