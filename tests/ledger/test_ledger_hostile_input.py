"""Input the ledger answered with a 500 or a ``text/plain`` body (issue 13, defect 11):
a 5000-digit history limit (int() of it raised), and request heads aiohttp's parser
refuses before any handler runs. Each is now a 4xx JSON problem saying what is wrong."""

from __future__ import annotations

import aiohttp
import pytest

from requester.protocol import PayerKey
from tests.ledger.support import problem, send
from tests.processes import Running
from tests.raw_http import BAD_HEADS, HEAD_STATUS, exchange, problem_of


@pytest.mark.parametrize("limit", ["9" * 5000, "1" + "0" * 4300, "10000"])
async def test_a_history_limit_of_many_digits_is_a_400(
    shared_ledger: Running, session: aiohttp.ClientSession, limit: str,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    address = PayerKey.generate().address
    url = f"{shared_ledger.url}/v1/accounts/{address}/history?limit={limit}"
    answer = await send(session, "GET", url)
    assert problem(answer, 400, "bad_request") == "limit must be an integer from 1 to 1000"
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(("data", "code"), [(d, c) for _, d, c in BAD_HEADS],
                         ids=[i for i, _, _ in BAD_HEADS])  # fmt: skip
async def test_a_request_head_the_parser_refuses_gets_a_problem(
    shared_ledger: Running, data: bytes, code: str, capfd: pytest.CaptureFixture[str]
) -> None:
    status, document = problem_of(await exchange(shared_ledger.url, data))
    assert status == HEAD_STATUS[code]
    assert document["type"].endswith(f"/{code}"), document
    assert "Traceback" not in capfd.readouterr().err


async def test_unknown_paths_and_methods_say_what_was_asked(
    shared_ledger: Running, session: aiohttp.ClientSession
) -> None:
    answer = await send(session, "GET", f"{shared_ledger.url}/v1/nothing")
    assert problem(answer, 404, "not_found") == "nothing at /v1/nothing"
    answer = await send(session, "DELETE", f"{shared_ledger.url}/v1/faucet")
    assert problem(answer, 405, "method_not_allowed") == (
        "DELETE is not allowed on /v1/faucet; use POST"
    )
