"""Crash safety: SIGKILL the ledger at each commit point of each call, then restart it.

For every call kind and both points of ``ATLAS_LEDGER_CRASH_AT``, state is set
up by a normal ledger, the call is sent to a ledger that kills itself at that
point, and a normal ledger restarted on the same data dir must show the call
either not applied at all (``before-commit``) or applied exactly once
(``after-commit``). Retrying the very same call must then leave it applied
exactly once, and no money may appear or vanish.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest

from cdn_edge.ledger.cli import CRASH_ENV
from requester.ledger_client import LedgerClient, LedgerError
from requester.protocol import (
    BTT_LOCAL,
    OpenChannel,
    PayerKey,
    ReclaimChannel,
    TopUpChannel,
    Voucher,
    sign_op,
)
from tests.crash.armed import client_of
from tests.ledger.support import ONE, funded, ledger_time, ok, problem, send, totals
from tests.processes import Running, start_ledger

KINDS = ["open", "topup", "redeem", "reclaim", "faucet-mint"]
POINTS = ["before-commit", "after-commit"]
FAR = 10**6
RECLAIM_AFTER = 2
"""Seconds until the channel of the reclaim case expires."""


@dataclass(frozen=True)
class State:
    """Everything a call can change, read back through the API."""

    payer: int
    payee: int
    nonce: int
    channel: tuple[str, str, int, str] | None
    """``(deposit, redeemed, expires_at, status)``, or None if there is no channel."""
    minted: int


@dataclass(frozen=True)
class Scenario:
    path: str
    body: dict[str, str]
    payer: PayerKey
    payee: PayerKey
    channel_id: bytes | None
    expires_at: int
    before: State
    after: State
    """The state once the call is applied, exactly once."""


@asynccontextmanager
async def ledger_at(data_dir: Path, env: dict[str, str] | None = None) -> AsyncIterator[Running]:
    running = start_ledger(data_dir, env=env)
    try:
        yield running
    finally:
        running.stop()


async def snapshot(
    client: LedgerClient, payer: PayerKey, payee: PayerKey, cid: bytes | None
) -> State:
    channel: tuple[str, str, int, str] | None = None
    if cid is not None:
        try:
            view = await client.channel(cid)
            channel = (view["deposit"], view["redeemed"], view["expires_at"], view["status"])
        except LedgerError as exc:
            assert exc.status == 404, exc
    account = await client.account(payer.address)
    return State(
        payer=int(account["balances"].get(BTT_LOCAL.uri, "0")),
        payee=await client.balance(payee.address),
        nonce=int(account["next_nonce"]),
        channel=channel,
        minted=(await totals(client))[0],
    )


async def state_of(client: LedgerClient, s: Scenario) -> State:
    return await snapshot(client, s.payer, s.payee, s.channel_id)


async def prepare(kind: str, client: LedgerClient) -> Scenario:
    """Set up the state ``kind`` needs and build the call to crash on."""
    domain = await client.domain()
    payer, payee = await funded(client, 10 * ONE), PayerKey.generate()
    now = await ledger_time(client)
    cid: bytes | None = None
    expires_at = now + FAR
    existing = bytes(32)  # the channel that top-up, redeem and reclaim act on
    if kind in ("topup", "redeem", "reclaim"):
        expires_at = now + (RECLAIM_AFTER if kind == "reclaim" else FAR)
        opened = await client.open_channel(payer, payee.address, 2 * ONE, expires_at)
        cid = existing = bytes.fromhex(opened["channel"]["channel_id"])
        await client.redeem(
            Voucher.create(
                payer, domain=domain, channel_id=existing, payee=payee.address, asset=BTT_LOCAL,
                amount=ONE // 2,
            )
        )  # fmt: skip
    before = await snapshot(client, payer, payee, cid)
    if kind == "open":
        op = OpenChannel(
            payer.address, payee.address, BTT_LOCAL, 2 * ONE, expires_at,
            secrets.token_bytes(32), before.nonce,
        )  # fmt: skip
        cid = op.channel_id(domain)
        path, body = "/v1/calls", sign_op(payer, domain, op).to_json()
        after = replace(
            before, payer=before.payer - 2 * ONE, nonce=before.nonce + 1,
            channel=(str(2 * ONE), "0", expires_at, "open"),
        )  # fmt: skip
    elif kind == "topup":
        top_up = TopUpChannel(payer.address, existing, ONE, expires_at + 60, before.nonce)
        path, body = "/v1/calls", sign_op(payer, domain, top_up).to_json()
        after = replace(
            before, payer=before.payer - ONE, nonce=before.nonce + 1,
            channel=(str(3 * ONE), str(ONE // 2), expires_at + 60, "open"),
        )  # fmt: skip
    elif kind == "redeem":
        voucher = Voucher.create(
            payer, domain=domain, channel_id=existing, payee=payee.address, asset=BTT_LOCAL,
            amount=ONE + ONE // 2,
        )  # fmt: skip
        path, body = "/v1/redeem", {"voucher": voucher.to_header()}
        after = replace(
            before, payee=before.payee + ONE,
            channel=(str(2 * ONE), str(ONE + ONE // 2), expires_at, "open"),
        )  # fmt: skip
    elif kind == "reclaim":
        reclaim = ReclaimChannel(payer.address, existing, before.nonce)
        path, body = "/v1/calls", sign_op(payer, domain, reclaim).to_json()
        after = replace(
            before, payer=before.payer + 2 * ONE - ONE // 2, nonce=before.nonce + 1,
            channel=(str(2 * ONE), str(ONE // 2), expires_at, "reclaimed"),
        )  # fmt: skip
    else:
        path = "/v1/faucet"
        body = {"address": str(payer.address), "amount": "5 BTT", "request_id": "crash-test"}
        after = replace(before, payer=before.payer + 5 * ONE, minted=before.minted + 5 * ONE)
    scenario = Scenario(path, body, payer, payee, cid, expires_at, before, after)
    assert await state_of(client, scenario) == before
    return scenario


async def retry(client: LedgerClient, s: Scenario, kind: str, point: str) -> None:
    """Send the same call again and check the answer fits what was already applied."""
    async with aiohttp.ClientSession() as http:
        answer = await send(http, "POST", client.url + s.path, json_body=s.body)
    if kind == "redeem" and point == "after-commit":
        problem(answer, 409, "already_redeemed")
    elif kind == "redeem":
        assert ok(answer)["credited"] == str(ONE)
    elif kind == "faucet-mint":
        assert ok(answer)["balances"] == {BTT_LOCAL.uri: str(s.after.payer)}
        assert ok(answer)["replayed"] is (point == "after-commit")
    else:
        assert ok(answer)["replayed"] is (point == "after-commit")


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("kind", KINDS)
async def test_kill_at_commit_point_applies_a_call_at_most_once(
    tmp_path: Path, kind: str, point: str
) -> None:
    data_dir = tmp_path / "ledger"
    async with ledger_at(data_dir) as running, client_of(running) as client:
        scenario = await prepare(kind, client)

    async with ledger_at(data_dir, env={CRASH_ENV: point}) as crashing:
        if kind == "reclaim":
            await asyncio.sleep(max(0.0, scenario.expires_at - time.time() + 0.05))
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientError):
                await send(http, "POST", crashing.url + scenario.path, json_body=scenario.body)
        assert crashing.proc.wait(10) == -signal.SIGKILL

    async with ledger_at(data_dir) as running, client_of(running) as client:
        state = await state_of(client, scenario)
        assert state == (scenario.before if point == "before-commit" else scenario.after)
        await retry(client, scenario, kind, point)
        assert await state_of(client, scenario) == scenario.after
        # Once applied, any further copy of the call changes nothing (the faucet
        # recognises its request_id).
        async with aiohttp.ClientSession() as http:
            url = client.url + scenario.path
            third = await send(http, "POST", url, json_body=scenario.body)
        assert third.status in (200, 409), third
        assert await state_of(client, scenario) == scenario.after
