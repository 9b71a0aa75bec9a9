"""The SDK's chunk run reader against a hostile provider (an aiohttp server on 127.0.0.1
serving crafted runs of tests/vectors' content): each frame is verified before it is handed
on, the frames before a bad one are kept, and a lying trailer or a cut-off run is told apart
from a complete one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from requester.chunk_checks import Delivered
from requester.chunk_faults import ProviderFault, ProviderUnreachable
from requester.chunk_runs import request_run
from requester.protocol import ContentPublisher, ContentVerifier, ManifestHead, NodeKey
from requester.protocol.chunk_run import FrameHeader, RunEnd, RunTrailer
from requester.protocol.manifest import MIN_CHUNK_SIZE
from tests.conftest import EDGE_SEED, make_head
from tests.local_app import serving

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text("utf-8"))
CONTENT = MANIFEST["content"]
HEAD = ManifestHead.decode(bytes.fromhex(MANIFEST["heads"][0]["encoded"]))
BODY = bytes((i * 31 + 7) % 251 for i in range(CONTENT["body_size"]))


def _frame(i: int, data: bytes | None = None, index: int | None = None) -> bytes:
    st = CONTENT["statements"][i]
    chunk = BODY[st["offset"] : st["offset"] + st["size"]] if data is None else data
    header = FrameHeader(i if index is None else index, 7, len(chunk),
                         bytes.fromhex(st["encoded"]))  # fmt: skip
    return header.encode() + chunk


GOOD = [_frame(i) for i in range(3)]
BODIES = {
    "good": b"".join(GOOD) + RunTrailer(RunEnd.COMPLETE, 3, 21).encode(),
    "bad-second": GOOD[0]
    + _frame(1, b"\x00" * CONTENT["statements"][1]["size"])
    + GOOD[2]
    + RunTrailer(RunEnd.COMPLETE, 3, 21).encode(),
    "skips": GOOD[0] + GOOD[2] + RunTrailer(RunEnd.COMPLETE, 2, 14).encode(),
    "lying-trailer": b"".join(GOOD) + RunTrailer(RunEnd.COMPLETE, 3, 1).encode(),
    "cut": GOOD[0] + GOOD[1][:1000],
    "ended": GOOD[0] + RunTrailer(RunEnd.END, 1, 7, "ends here").encode(),
    "garbage": b"HTTP/1.1 200 OK\r\n" * 20,
}
SMALL = MIN_CHUNK_SIZE
KEY = NodeKey(EDGE_SEED)
SMALL_HEAD = make_head(KEY, chunk_size=SMALL)
SMALL_CHUNKS = ContentPublisher(KEY, SMALL_HEAD).feed(bytes(range(256)) * (6 * SMALL // 256))
"""Six chunks: enough frames queued behind the one being checked for a bad one to have
later frames read already."""
BODIES["lie-then-more"] = b"".join(
    FrameHeader(c.statement.index, 0, SMALL, c.statement.encode(), paid_by="free",
                lane="free").encode() + (c.data if c.statement.index != 2 else bytes(SMALL))
    for c in SMALL_CHUNKS
) + RunTrailer(RunEnd.COMPLETE, 6, 0).encode()  # fmt: skip


@pytest.fixture
async def provider() -> AsyncIterator[str]:
    async def run(request: web.Request) -> web.StreamResponse:
        body = BODIES[request.match_info["name"]]
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(body)
        if request.match_info["name"] == "cut":
            assert request.transport is not None
            request.transport.close()  # the connection breaks mid-frame
            return response
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/run/{name}", run)
    async with serving(app) as url:
        yield url


async def _read(provider: str, name: str, head: ManifestHead = HEAD,
                count: int = 3) -> tuple[list[int], object]:  # fmt: skip
    got: list[int] = []

    def deliver(index: int, delivered: Delivered) -> None:
        if head is HEAD:
            st = CONTENT["statements"][index]
            assert delivered.data == BODY[st["offset"] : st["offset"] + st["size"]]
        got.append(index)

    async with aiohttp.ClientSession() as session:
        try:
            answer = await request_run(session, provider, f"{provider}/run/{name}", {},
                                       ContentVerifier(head), 0, count, deliver)  # fmt: skip
        except (ProviderFault, ProviderUnreachable) as exc:
            return got, exc
        return got, answer.trailer


async def test_a_good_run_hands_on_every_chunk_in_order(provider: str) -> None:
    got, trailer = await _read(provider, "good")
    assert got == [0, 1, 2]
    assert trailer == RunTrailer(RunEnd.COMPLETE, 3, 21)


async def test_a_bad_frame_drops_the_provider_and_the_frames_before_it_are_kept(
    provider: str,
) -> None:
    got, exc = await _read(provider, "bad-second")
    assert got == [0]
    assert isinstance(exc, ProviderFault) and "bad chunk 1" in exc.reason
    assert exc.evidence["index"] == "1" and exc.evidence["statement"]


async def test_no_frame_after_a_bad_one_is_handed_on(provider: str) -> None:
    """Frames 3 to 5 were read (and checked) while frame 2 was being checked: a provider
    that lied once is not believed about the rest of its run."""
    got, exc = await _read(provider, "lie-then-more", SMALL_HEAD, 6)
    assert got == [0, 1]
    assert isinstance(exc, ProviderFault) and "bad chunk 2" in exc.reason


async def test_a_frame_out_of_order_is_a_fault(provider: str) -> None:
    got, exc = await _read(provider, "skips")
    assert got == [0]
    assert isinstance(exc, ProviderFault) and "run sent chunk 2 for 1" in exc.reason


async def test_a_trailer_that_misstates_the_charge_is_a_fault(provider: str) -> None:
    got, exc = await _read(provider, "lying-trailer")
    assert got == [0, 1, 2]  # each verified: the bytes are good, the bill is not
    assert isinstance(exc, ProviderFault) and "states 3 frames for 1" in exc.reason


async def test_a_run_cut_mid_frame_keeps_what_came_and_may_be_asked_again(provider: str) -> None:
    got, exc = await _read(provider, "cut")
    assert got == [0]
    assert isinstance(exc, ProviderUnreachable)


async def test_an_early_end_is_reported_with_its_detail(provider: str) -> None:
    got, trailer = await _read(provider, "ended")
    assert got == [0]
    assert trailer == RunTrailer(RunEnd.END, 1, 7, "ends here")


async def test_bytes_that_are_no_run_are_a_fault(provider: str) -> None:
    got, exc = await _read(provider, "garbage")
    assert got == []
    assert isinstance(exc, ProviderFault) and "bad run" in exc.reason
