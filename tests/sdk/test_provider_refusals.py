"""A provider's refusal reads as words, not a bytes repr: its problem code and detail, or a
short excerpt of its text, bounded, without control characters (they reach a terminal).

Before, ``atlas fetch`` printed ``answered 400: b'{"type": "https://atlas.invalid/...``.
The provider here is an aiohttp server on 127.0.0.1 answering every chunk request with
the body a test gives it; the SDK's ``ChunkClient`` asks it for a chunk.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from requester.chunk_client import ChunkClient, ContentFailed, ProviderFault
from requester.protocol import ContentVerifier, NodeKey
from tests.conftest import EDGE_SEED, make_head

ESCAPES = "\x1b[31mred\x1b[0m\r\nsecond line\u202eevil\x00"


@pytest.fixture
async def provider() -> AsyncIterator[tuple[str, dict[str, object]]]:
    """``(url, answer)``: set ``answer["status"]``, ``["body"]`` and ``["headers"]``."""
    answer: dict[str, object] = {"status": 400, "body": b"", "headers": {}}

    async def chunk(_: web.Request) -> web.Response:
        return web.Response(status=answer["status"], body=answer["body"],  # type: ignore[arg-type]
                            headers=answer["headers"])  # type: ignore[arg-type]  # fmt: skip

    app = web.Application()
    app.router.add_get("/v1/chunk/{content_id}/{index}", chunk)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", answer
    await runner.cleanup()


async def _fault(url: str) -> ProviderFault:
    verifier = ContentVerifier(make_head(NodeKey(EDGE_SEED)))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ProviderFault) as caught:
            await ChunkClient(session, None).get(url, verifier, 0)
    return caught.value


async def _reason(url: str) -> str:
    return (await _fault(url)).reason


def _readable(reason: str) -> None:
    assert all(c.isprintable() for c in reason), repr(reason)
    assert "b'" not in reason and "\\x" not in reason and '"type"' not in reason, reason
    assert len(reason) <= 300, len(reason)


def _problem(code: str, detail: str) -> bytes:
    doc = {"type": f"https://atlas.invalid/problems/{code}", "title": code, "status": 400,
           "detail": detail}  # fmt: skip
    return json.dumps(doc).encode()


async def test_a_json_problem_shows_its_code_and_detail(
    provider: tuple[str, dict[str, object]],
) -> None:
    url, answer = provider
    answer["body"] = _problem("bad_voucher", "voucher is malformed: " + ESCAPES + "x" * 5000)
    reason = await _reason(url)
    _readable(reason)
    assert reason.startswith("answered 400 bad_voucher: voucher is malformed: "), reason
    assert "[31mred [0m second line evil" in reason, reason


async def test_a_problem_code_cannot_smuggle_escapes_either(
    provider: tuple[str, dict[str, object]],
) -> None:
    url, answer = provider
    answer["status"] = 409
    answer["body"] = _problem("stale\x1b]0;title\x07" + "y" * 500, "")
    reason = await _reason(url)
    _readable(reason)
    assert reason.startswith("answered 409 stale ]0;title y"), reason


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (409, b"stale voucher\r\n", "answered 409: stale voucher"),
        (418, ESCAPES.encode() + bytes(range(256)) * 8, "answered 418: [31mred [0m second"),
        (400, b"", "answered 400"),
        (400, b"[" * 60000, "answered 400: [[[["),  # JSON nested past the parser's stack
        (400, b'{"type": 7, "detail": "not a problem"}', 'answered 400: {"type": 7,'),
    ],
)
async def test_other_bodies_show_a_short_decoded_excerpt(
    status: int, body: bytes, expected: str, provider: tuple[str, dict[str, object]]
) -> None:
    url, answer = provider
    answer["status"], answer["body"] = status, body
    reason = await _reason(url)
    assert all(c.isprintable() for c in reason) and len(reason) <= 300, repr(reason)
    assert reason.startswith(expected), reason


async def test_a_content_failed_problem_is_printable_too(
    provider: tuple[str, dict[str, object]],
) -> None:
    url, answer = provider
    answer["status"] = 502
    answer["headers"] = {"Atlas-Content-State": "failed"}
    answer["body"] = _problem("origin_truncated", "cut " + ESCAPES)
    fault = await _fault(url)
    assert isinstance(fault, ContentFailed)
    assert fault.code == "origin_truncated"
    assert fault.detail == "cut [31mred [0m second line evil"
    assert all(c.isprintable() for c in fault.reason)


async def test_a_content_failed_body_nested_past_the_stack_only_drops_the_provider(
    provider: tuple[str, dict[str, object]],
) -> None:
    """json.loads raises RecursionError (not ValueError) on ``[[[[...``: it escaped the chunk
    client and ended the whole download instead of dropping the provider."""
    url, answer = provider
    answer["status"], answer["headers"] = 502, {"Atlas-Content-State": "failed"}
    answer["body"] = b"[" * 60000
    fault = await _fault(url)
    assert isinstance(fault, ContentFailed)
    assert fault.code == "content_failed"
