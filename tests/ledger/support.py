"""Helpers for the ledger tests: raw HTTP answers, problem bodies, money checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from requester.ledger_client import LedgerClient
from requester.protocol import BTT_LOCAL, PayerKey, SignedOp, Voucher

PROBLEM_JSON = "application/problem+json"
ONE = BTT_LOCAL.one
"""One whole local BTT in base units."""


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: Any


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    json_body: object = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One raw request; the body is parsed as JSON whatever the status."""
    kwargs: dict[str, Any] = {"headers": headers}
    if data is not None:
        kwargs["data"] = data
    elif json_body is not None:
        kwargs["json"] = json_body
    async with session.request(method, url, **kwargs) as resp:
        text = await resp.text()
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        return Answer(resp.status, resp.content_type, body)


async def post_call(session: aiohttp.ClientSession, url: str, call: SignedOp) -> Answer:
    return await send(session, "POST", f"{url}/v1/calls", json_body=call.to_json())


async def post_redeem(session: aiohttp.ClientSession, url: str, voucher: Voucher) -> Answer:
    return await send(
        session, "POST", f"{url}/v1/redeem", json_body={"voucher": voucher.to_header()}
    )


def ok(answer: Answer) -> dict[str, Any]:
    """The JSON object of a 200 answer."""
    assert answer.status == 200, answer
    assert answer.content_type == "application/json", answer
    assert isinstance(answer.body, dict), answer
    return answer.body


def problem(answer: Answer, status: int, code: str | None = None) -> str:
    """Check ``answer`` is an RFC 9457 problem with this status (and code); return its detail."""
    assert answer.status == status, answer
    assert answer.content_type == PROBLEM_JSON, answer
    body = answer.body
    assert isinstance(body, dict), answer
    assert body["status"] == status, answer
    if code is not None:
        assert body["type"] == f"https://atlas.invalid/problems/{code}", answer
    assert isinstance(body["detail"], str) and body["detail"], answer
    return body["detail"]


def client_problem(answer: Answer) -> str:
    """Any 4xx problem: a clear refusal, never a 500 or an HTML page."""
    assert 400 <= answer.status < 500, answer
    return problem(answer, answer.status)


async def totals(client: LedgerClient) -> tuple[int, int, int]:
    """``(minted, balances, in_channels)``, checking no money was made or lost."""
    t = (await client.info())["totals"]
    minted, balances, held = int(t["minted"]), int(t["balances"]), int(t["in_channels"])
    assert minted == balances + held, t
    return minted, balances, held


async def funded(client: LedgerClient, amount: int = 10 * ONE) -> PayerKey:
    key = PayerKey.generate()
    await client.faucet(key.address, amount)
    return key


async def ledger_time(client: LedgerClient) -> int:
    return int((await client.info())["time"])


async def move_clock_to(session: aiohttp.ClientSession, ledger_url: str, moment: int) -> None:
    """Move a clocked ledger's clock (tests/ledger/clocked_ledger.py) forward to ``moment``."""
    async with session.post(f"{ledger_url}/_test/clock", json={"to": moment}) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["time"] >= moment


async def nonce(client: LedgerClient, key: PayerKey) -> int:
    return int((await client.account(key.address))["next_nonce"])
