"""The embedded ledger's HTTP API, through a real ``atlas ledger serve`` process.

Happy paths go through :class:`LedgerClient`; refusals and malformed input go
through raw requests so the status, the problem body and its content type are
checked exactly. After every step that moves money the totals must add up:
``minted == balances + in_channels``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from requester.ledger_client import LedgerClient, LedgerError
from requester.protocol import (
    BTT,
    BTT_LOCAL,
    LOCAL_CHAIN_ID,
    LOCAL_LEDGER_CONTRACT,
    TRON_MAINNET_CHAIN_ID,
    OpenChannel,
    PayerKey,
    PaymentDomain,
    ReclaimChannel,
    SignedOp,
    TopUpChannel,
    Voucher,
    format_amount,
    sign_op,
)
from requester.protocol.codec import U64_MAX
from tests.ledger.support import (
    ONE,
    PROBLEM_JSON,
    client_problem,
    funded,
    ledger_time,
    move_clock_to,
    nonce,
    ok,
    post_call,
    post_redeem,
    problem,
    send,
    totals,
)
from tests.processes import Running, start_ledger

FAR = 10**6
"""Seconds to an expiry that no test reaches."""
HOUR = 3600
"""Seconds to an expiry that a test reaches by moving the clocked ledger's clock."""


async def open_channel(
    client: LedgerClient, payer: PayerKey, payee: PayerKey, deposit: int, expires_in: int = FAR
) -> bytes:
    now = await ledger_time(client)
    result = await client.open_channel(payer, payee.address, deposit, now + expires_in)
    assert result["replayed"] is False
    return bytes.fromhex(result["channel"]["channel_id"])


async def signed_open(
    client: LedgerClient, payer: PayerKey, payee: PayerKey, deposit: int, expires_in: int = FAR
) -> SignedOp:
    op = OpenChannel(
        payer.address, payee.address, BTT_LOCAL, deposit,
        await ledger_time(client) + expires_in, secrets.token_bytes(32),
        await nonce(client, payer),
    )  # fmt: skip
    return sign_op(payer, await client.domain(), op)


async def voucher(
    client: LedgerClient, payer: PayerKey, payee: PayerKey, cid: bytes, amount: int
) -> Voucher:
    return Voucher.create(
        payer, domain=await client.domain(), channel_id=cid, payee=payee.address,
        asset=BTT_LOCAL, amount=amount,
    )  # fmt: skip


# -- service endpoints ---------------------------------------------------------------


async def test_healthz_and_metrics(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    assert ok(await send(session, "GET", f"{ledger.url}/healthz")) == {"status": "ok"}
    await funded(client)
    async with session.get(f"{ledger.url}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    assert "atlas_ledger_calls" in text
    assert 'atlas_ledger_calls_total{kind="faucet",outcome="ok"} 1.0' in text


async def test_info_names_the_local_domain_and_starts_empty(client: LedgerClient) -> None:
    info = await client.info()
    assert info["chain_id"] == LOCAL_CHAIN_ID
    assert info["contract"] == LOCAL_LEDGER_CONTRACT.hex()
    assert info["asset"] == BTT_LOCAL.uri
    assert info["faucet"] is True
    assert isinstance(info["time"], int)
    assert info["totals"] == {"minted": "0", "balances": "0", "in_channels": "0"}


# -- faucet --------------------------------------------------------------------------


async def test_faucet_mints_exactly_what_was_asked(client: LedgerClient) -> None:
    key = PayerKey.generate()
    account = await client.faucet(key.address, 5 * ONE + 1)
    assert account == {
        "address": str(key.address),
        "next_nonce": "0",
        "balances": {BTT_LOCAL.uri: str(5 * ONE + 1)},
        "minted": str(5 * ONE + 1),
        "replayed": False,
    }
    await client.faucet(key.address, 2 * ONE)
    assert await client.balance(key.address) == 7 * ONE + 1
    assert await totals(client) == (7 * ONE + 1, 7 * ONE + 1, 0)


async def test_faucet_is_refused_without_the_flag(tmp_path: Path) -> None:
    running = start_ledger(tmp_path / "no-faucet", faucet=False)
    try:
        async with aiohttp.ClientSession() as http:
            client = LedgerClient(running.url, http)
            assert (await client.info())["faucet"] is False
            key = PayerKey.generate()
            answer = await send(
                http, "POST", f"{running.url}/v1/faucet",
                json_body={"address": str(key.address), "amount": "1"},
            )  # fmt: skip
            assert "--faucet" in problem(answer, 403, "faucet_disabled")
            assert await client.balance(key.address) == 0
            assert await totals(client) == (0, 0, 0)
    finally:
        running.stop()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"address": "TNotAnAddress", "amount": "1"}, id="bad-address"),
        pytest.param({"address": "41" + "00" * 19, "amount": "1"}, id="short-hex-address"),
        pytest.param({"address": 12345, "amount": "1"}, id="address-not-text"),
        pytest.param({"address": "", "amount": "1"}, id="empty-address"),
        pytest.param({"amount": "1"}, id="no-address"),
        pytest.param({"address": "{payee}", "amount": "0"}, id="zero"),
        pytest.param({"address": "{payee}", "amount": "-1"}, id="negative"),
        pytest.param({"address": "{payee}", "amount": "1001"}, id="above-faucet-max"),
        pytest.param({"address": "{payee}", "amount": "0.0000000000000000001"}, id="too-precise"),
        pytest.param({"address": "{payee}", "amount": "lots"}, id="not-a-number"),
        pytest.param({"address": "{payee}", "amount": 1e400}, id="infinite"),
        pytest.param({"address": "{payee}", "amount": "9" * 60}, id="huge"),
        pytest.param(["{payee}", "1"], id="not-an-object"),
    ],
)
async def test_faucet_refuses_bad_address_or_amount(
    shared_ledger: Running, session: aiohttp.ClientSession, body: Any
) -> None:
    ledger, client = shared_ledger, LedgerClient(shared_ledger.url, session)
    key = PayerKey.generate()
    if isinstance(body, dict) and body.get("address") == "{payee}":
        body = {**body, "address": str(key.address)}
    answer = await send(session, "POST", f"{ledger.url}/v1/faucet", json_body=body)
    assert answer.status == 400
    client_problem(answer)
    assert await client.balance(key.address) == 0
    assert await totals(client) == (0, 0, 0)


# -- the channel lifecycle -------------------------------------------------------------


async def test_open_topup_redeem_reclaim_add_up_exactly(
    clocked_ledger: Running, clocked_client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    """The clock is moved to the expiry by the test (clocked ledger): on a loaded machine a
    channel expiring in 3 s sometimes expired before its redeems were sent."""
    ledger, client = clocked_ledger, clocked_client
    payer, payee = await funded(client, 10 * ONE), PayerKey.generate()
    assert await totals(client) == (10 * ONE, 10 * ONE, 0)

    now = await ledger_time(client)
    opened = await client.open_channel(payer, payee.address, 2 * ONE, now + HOUR)
    channel = opened["channel"]
    cid = bytes.fromhex(channel["channel_id"])
    assert opened["replayed"] is False
    assert channel == {
        "channel_id": cid.hex(), "payer": str(payer.address), "payee": str(payee.address),
        "asset": BTT_LOCAL.uri, "deposit": str(2 * ONE), "redeemed": "0",
        "expires_at": now + HOUR, "opened_at": channel["opened_at"], "status": "open",
    }  # fmt: skip
    assert await client.balance(payer.address) == 8 * ONE
    assert await totals(client) == (10 * ONE, 8 * ONE, 2 * ONE)

    topped = await client.top_up(payer, cid, ONE, now + HOUR + 1)
    assert topped["channel"]["deposit"] == str(3 * ONE)
    assert topped["channel"]["expires_at"] == now + HOUR + 1
    assert await client.balance(payer.address) == 7 * ONE
    assert await totals(client) == (10 * ONE, 7 * ONE, 3 * ONE)

    first = await client.redeem(await voucher(client, payer, payee, cid, ONE // 2))
    assert first["credited"] == str(ONE // 2)
    second = await client.redeem(await voucher(client, payer, payee, cid, 2 * ONE))
    assert second["credited"] == str(2 * ONE - ONE // 2)
    assert second["channel"]["redeemed"] == str(2 * ONE)
    assert await client.balance(payee.address) == 2 * ONE
    assert await totals(client) == (10 * ONE, 9 * ONE, ONE)

    early = await post_call(
        session, ledger.url,
        sign_op(payer, await client.domain(),
                ReclaimChannel(payer.address, cid, await nonce(client, payer))),
    )  # fmt: skip
    problem(early, 409, "not_expired")

    await move_clock_to(session, ledger.url, now + HOUR + 1)
    late = await post_redeem(session, ledger.url, await voucher(client, payer, payee, cid, 3 * ONE))
    problem(late, 409, "channel_expired")
    later = now + HOUR + 100
    late_top_up = await post_call(
        session, ledger.url,
        sign_op(payer, await client.domain(),
                TopUpChannel(payer.address, cid, ONE, later, await nonce(client, payer))),
    )  # fmt: skip
    problem(late_top_up, 409, "channel_expired")
    assert await totals(client) == (10 * ONE, 9 * ONE, ONE)

    reclaim = sign_op(
        payer, await client.domain(),
        ReclaimChannel(payer.address, cid, await nonce(client, payer)),
    )  # fmt: skip
    reclaimed = ok(await post_call(session, ledger.url, reclaim))
    assert reclaimed["returned"] == str(ONE)
    assert reclaimed["replayed"] is False
    assert reclaimed["channel"]["status"] == "reclaimed"
    assert await client.balance(payer.address) == 8 * ONE
    assert await client.balance(payee.address) == 2 * ONE
    assert await totals(client) == (10 * ONE, 10 * ONE, 0)

    again = await post_call(
        session, ledger.url,
        sign_op(payer, await client.domain(),
                ReclaimChannel(payer.address, cid, await nonce(client, payer))),
    )  # fmt: skip
    problem(again, 409, "already_reclaimed")
    replayed = ok(await post_call(session, ledger.url, reclaim))
    assert replayed["replayed"] is True
    assert replayed["returned"] == str(ONE)
    assert await client.balance(payer.address) == 8 * ONE
    assert await totals(client) == (10 * ONE, 10 * ONE, 0)
    assert (await client.channel(cid))["status"] == "reclaimed"


async def test_top_up_of_zero_only_extends_expiry(client: LedgerClient) -> None:
    payer, payee = await funded(client), PayerKey.generate()
    cid = await open_channel(client, payer, payee, ONE)
    before = await client.channel(cid)
    result = await client.top_up(payer, cid, 0, before["expires_at"] + 60)
    assert result["channel"]["deposit"] == str(ONE)
    assert result["channel"]["expires_at"] == before["expires_at"] + 60
    assert await client.balance(payer.address) == 9 * ONE
    await totals(client)


async def test_top_up_cannot_shorten_expiry(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = await funded(client), PayerKey.generate()
    cid = await open_channel(client, payer, payee, ONE)
    expires_at = (await client.channel(cid))["expires_at"]
    call = sign_op(
        payer, await client.domain(),
        TopUpChannel(payer.address, cid, ONE, expires_at - 1, await nonce(client, payer)),
    )  # fmt: skip
    problem(await post_call(session, ledger.url, call), 400, "bad_request")
    assert await client.balance(payer.address) == 9 * ONE
    assert await nonce(client, payer) == 1


async def test_open_refuses_past_expiry_and_reused_salt(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = await funded(client), PayerKey.generate()
    domain = await client.domain()
    now = await ledger_time(client)
    past = OpenChannel(payer.address, payee.address, BTT_LOCAL, ONE, now - 1, bytes(32), 0)
    problem(await post_call(session, ledger.url, sign_op(payer, domain, past)), 400, "bad_request")
    assert await nonce(client, payer) == 0

    salt = secrets.token_bytes(32)
    first = OpenChannel(payer.address, payee.address, BTT_LOCAL, ONE, now + FAR, salt, 0)
    ok(await post_call(session, ledger.url, sign_op(payer, domain, first)))
    same_salt = OpenChannel(payer.address, payee.address, BTT_LOCAL, 2 * ONE, now + FAR, salt, 1)
    answer = await post_call(session, ledger.url, sign_op(payer, domain, same_salt))
    problem(answer, 409, "channel_exists")
    assert await client.balance(payer.address) == 9 * ONE
    assert await totals(client) == (10 * ONE, 9 * ONE, ONE)


# -- overdrafts ------------------------------------------------------------------------


async def test_open_beyond_balance_is_refused_with_the_missing_amount(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = await funded(client, 3 * ONE), PayerKey.generate()
    call = await signed_open(client, payer, payee, 5 * ONE + 7)
    detail = problem(await post_call(session, ledger.url, call), 402, "insufficient_funds")
    assert f"({format_amount(2 * ONE + 7, BTT_LOCAL)} missing)" in detail
    assert await client.balance(payer.address) == 3 * ONE
    assert await nonce(client, payer) == 0
    assert await client.channels(payer.address) == []
    assert await totals(client) == (3 * ONE, 3 * ONE, 0)


async def test_top_up_beyond_balance_is_refused_with_the_missing_amount(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = await funded(client, 3 * ONE), PayerKey.generate()
    cid = await open_channel(client, payer, payee, 2 * ONE)
    expires_at = (await client.channel(cid))["expires_at"]
    call = sign_op(
        payer, await client.domain(),
        TopUpChannel(payer.address, cid, 4 * ONE, expires_at, await nonce(client, payer)),
    )  # fmt: skip
    detail = problem(await post_call(session, ledger.url, call), 402, "insufficient_funds")
    assert f"({format_amount(3 * ONE, BTT_LOCAL)} missing)" in detail
    assert (await client.channel(cid))["deposit"] == str(2 * ONE)
    assert await client.balance(payer.address) == ONE
    assert await nonce(client, payer) == 1
    assert await totals(client) == (3 * ONE, ONE, 2 * ONE)


async def test_open_in_an_asset_without_balance_is_an_overdraft(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = await funded(client), PayerKey.generate()
    op = OpenChannel(
        payer.address, payee.address, BTT, ONE, await ledger_time(client) + FAR,
        secrets.token_bytes(32), 0,
    )  # fmt: skip
    answer = await post_call(session, ledger.url, sign_op(payer, await client.domain(), op))
    problem(answer, 402, "insufficient_funds")
    assert await totals(client) == (10 * ONE, 10 * ONE, 0)


# -- signatures and nonces ------------------------------------------------------------


async def test_call_signed_by_another_key_is_refused(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    victim, mallory, payee = await funded(client), await funded(client), PayerKey.generate()
    domain = await client.domain()
    honest = await signed_open(client, victim, payee, ONE)
    forged = SignedOp(honest.op, mallory.sign_digest(honest.digest(domain)))
    detail = problem(await post_call(session, ledger.url, forged), 400, "invalid_signature")
    assert str(mallory.address) in detail and str(victim.address) in detail

    # Mallory signs her own call, then names the victim as payer in the JSON.
    own = await signed_open(client, mallory, payee, ONE)
    swapped = {**own.to_json(), "payer": str(victim.address)}
    answer = await send(session, "POST", f"{ledger.url}/v1/calls", json_body=swapped)
    problem(answer, 400, "invalid_signature")

    # A call signed for another ledger's domain recovers to someone else.
    elsewhere = PaymentDomain(TRON_MAINNET_CHAIN_ID, LOCAL_LEDGER_CONTRACT)
    foreign = sign_op(victim, elsewhere, honest.op)
    problem(await post_call(session, ledger.url, foreign), 400, "invalid_signature")

    # A signature that is not one at all.
    zero = {**honest.to_json(), "signature": "00" * 65}
    answer = await send(session, "POST", f"{ledger.url}/v1/calls", json_body=zero)
    problem(answer, 400, "invalid_signature")

    for key in (victim, mallory):
        assert await client.balance(key.address) == 10 * ONE
        assert await nonce(client, key) == 0
    assert await totals(client) == (20 * ONE, 20 * ONE, 0)


async def test_only_the_channel_payer_can_top_up_or_reclaim(
    clocked_ledger: Running, clocked_client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    ledger, client = clocked_ledger, clocked_client
    payer, mallory, payee = await funded(client), await funded(client), PayerKey.generate()
    cid = await open_channel(client, payer, payee, ONE, expires_in=HOUR)
    domain = await client.domain()
    expires_at = (await client.channel(cid))["expires_at"]
    top_up = TopUpChannel(mallory.address, cid, ONE, expires_at + FAR, 0)
    problem(await post_call(session, ledger.url, sign_op(mallory, domain, top_up)), 400,
            "wrong_binding")  # fmt: skip
    await move_clock_to(session, ledger.url, expires_at)
    reclaim = ReclaimChannel(mallory.address, cid, 0)
    problem(await post_call(session, ledger.url, sign_op(mallory, domain, reclaim)), 400,
            "wrong_binding")  # fmt: skip
    assert await client.balance(mallory.address) == 10 * ONE
    assert (await client.channel(cid))["status"] == "open"
    assert await totals(client) == (20 * ONE, 19 * ONE, ONE)


async def test_replay_of_the_same_call_is_answered_not_applied(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = await funded(client), PayerKey.generate()
    call = await signed_open(client, payer, payee, 2 * ONE)
    first = ok(await post_call(session, ledger.url, call))
    again = ok(await post_call(session, ledger.url, call))
    assert first["replayed"] is False
    assert again == {**first, "replayed": True}
    assert await client.balance(payer.address) == 8 * ONE
    assert await nonce(client, payer) == 1
    assert len(await client.channels(payer.address)) == 1

    cid = bytes.fromhex(first["channel"]["channel_id"])
    top_up = sign_op(
        payer, await client.domain(),
        TopUpChannel(payer.address, cid, ONE, first["channel"]["expires_at"], 1),
    )  # fmt: skip
    assert ok(await post_call(session, ledger.url, top_up))["replayed"] is False
    assert ok(await post_call(session, ledger.url, top_up))["replayed"] is True
    assert (await client.channel(cid))["deposit"] == str(3 * ONE)
    assert await client.balance(payer.address) == 7 * ONE
    assert await nonce(client, payer) == 2
    assert await totals(client) == (10 * ONE, 7 * ONE, 3 * ONE)


async def test_a_different_call_with_a_used_nonce_is_refused(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = await funded(client), PayerKey.generate()
    first = await signed_open(client, payer, payee, ONE)
    ok(await post_call(session, ledger.url, first))
    assert isinstance(first.op, OpenChannel)
    reuse = OpenChannel(
        payer.address, payee.address, BTT_LOCAL, ONE, first.op.expires_at,
        secrets.token_bytes(32), first.op.nonce,
    )  # fmt: skip
    answer = await post_call(session, ledger.url, sign_op(payer, await client.domain(), reuse))
    detail = problem(answer, 409, "bad_nonce")
    assert "used" in detail and "next is 1" in detail
    assert await client.balance(payer.address) == 9 * ONE
    assert len(await client.channels(payer.address)) == 1


async def test_a_nonce_ahead_of_the_account_is_refused(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = await funded(client), PayerKey.generate()
    op = OpenChannel(
        payer.address, payee.address, BTT_LOCAL, ONE, await ledger_time(client) + FAR,
        secrets.token_bytes(32), 1,
    )  # fmt: skip
    answer = await post_call(session, ledger.url, sign_op(payer, await client.domain(), op))
    detail = problem(answer, 409, "bad_nonce")
    assert "ahead" in detail and "next is 0" in detail
    assert await nonce(client, payer) == 0
    assert await client.balance(payer.address) == 10 * ONE


# -- redeem --------------------------------------------------------------------------------


async def test_redeem_twice_or_lower_is_refused(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = await funded(client), PayerKey.generate()
    cid = await open_channel(client, payer, payee, 3 * ONE)
    best = await voucher(client, payer, payee, cid, 2 * ONE)
    assert ok(await post_redeem(session, ledger.url, best))["credited"] == str(2 * ONE)
    detail = problem(await post_redeem(session, ledger.url, best), 409, "already_redeemed")
    assert format_amount(2 * ONE, BTT_LOCAL) in detail
    lower = await voucher(client, payer, payee, cid, ONE)
    problem(await post_redeem(session, ledger.url, lower), 409, "already_redeemed")
    zero = await voucher(client, payer, payee, cid, 0)
    problem(await post_redeem(session, ledger.url, zero), 409, "already_redeemed")
    assert await client.balance(payee.address) == 2 * ONE
    assert (await client.channel(cid))["redeemed"] == str(2 * ONE)
    assert await totals(client) == (10 * ONE, 9 * ONE, ONE)


async def test_redeem_above_the_deposit_is_refused(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = await funded(client), PayerKey.generate()
    cid = await open_channel(client, payer, payee, ONE)
    above = await voucher(client, payer, payee, cid, ONE + 1)
    problem(await post_redeem(session, ledger.url, above), 409, "deposit_exceeded")
    assert await client.balance(payee.address) == 0
    assert (await client.channel(cid))["redeemed"] == "0"
    # Once the deposit covers it, the same voucher is good.
    expires_at = (await client.channel(cid))["expires_at"]
    await client.top_up(payer, cid, 1, expires_at)
    assert ok(await post_redeem(session, ledger.url, above))["credited"] == str(ONE + 1)
    assert await totals(client) == (10 * ONE, 10 * ONE, 0)


async def test_redeem_of_an_unknown_channel_is_not_found(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = PayerKey.generate(), PayerKey.generate()
    ghost = await voucher(client, payer, payee, secrets.token_bytes(32), ONE)
    problem(await post_redeem(session, ledger.url, ghost), 404, "not_found")


def _other_domain(kind: str) -> PaymentDomain:
    if kind == "chain":
        return PaymentDomain(TRON_MAINNET_CHAIN_ID, LOCAL_LEDGER_CONTRACT)
    return PaymentDomain(LOCAL_CHAIN_ID, bytes(20))


@pytest.mark.parametrize("other", ["chain", "contract", "asset", "payee", "payer"])
async def test_voucher_bound_elsewhere_is_refused(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession, other: str
) -> None:
    payer, payee = await funded(client), PayerKey.generate()
    cid = await open_channel(client, payer, payee, ONE)
    domain = await client.domain()
    signer, to, asset = payer, payee.address, BTT_LOCAL
    if other in ("chain", "contract"):
        domain = _other_domain(other)
    elif other == "asset":
        asset = BTT
    elif other == "payee":
        to = PayerKey.generate().address
    else:
        signer = await funded(client)
    bad = Voucher.create(signer, domain=domain, channel_id=cid, payee=to, asset=asset, amount=ONE)
    problem(await post_redeem(session, ledger.url, bad), 400, "wrong_binding")
    assert await client.balance(payee.address) == 0
    assert await client.balance(to) == 0
    assert (await client.channel(cid))["redeemed"] == "0"
    await totals(client)


async def test_reclaim_before_expiry_is_refused(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = await funded(client), PayerKey.generate()
    cid = await open_channel(client, payer, payee, ONE)
    reclaim = ReclaimChannel(payer.address, cid, await nonce(client, payer))
    answer = await post_call(session, ledger.url, sign_op(payer, await client.domain(), reclaim))
    detail = problem(answer, 409, "not_expired")
    assert str((await client.channel(cid))["expires_at"]) in detail
    assert await client.balance(payer.address) == 9 * ONE
    assert await nonce(client, payer) == 1
    assert (await client.channel(cid))["status"] == "open"


async def test_a_reclaimed_channel_cannot_be_redeemed_or_topped_up(
    clocked_ledger: Running, clocked_client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    ledger, client = clocked_ledger, clocked_client
    payer, payee = await funded(client), PayerKey.generate()
    cid = await open_channel(client, payer, payee, 2 * ONE, expires_in=HOUR)
    paid = await voucher(client, payer, payee, cid, ONE)
    await client.redeem(paid)
    await move_clock_to(session, ledger.url, (await client.channel(cid))["expires_at"])
    assert (await client.reclaim(payer, cid))["returned"] == str(ONE)
    higher = await voucher(client, payer, payee, cid, 2 * ONE)
    problem(await post_redeem(session, ledger.url, higher), 409, "channel_expired")
    assert await client.balance(payee.address) == ONE
    assert await client.balance(payer.address) == 9 * ONE
    assert await totals(client) == (10 * ONE, 10 * ONE, 0)


# -- concurrency ---------------------------------------------------------------------------


async def test_64_concurrent_copies_of_a_redeem_credit_once(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = await funded(client), PayerKey.generate()
    cid = await open_channel(client, payer, payee, 3 * ONE)
    paid = await voucher(client, payer, payee, cid, 2 * ONE + 3)
    answers = await asyncio.gather(*(post_redeem(session, ledger.url, paid) for _ in range(64)))
    credited = [a for a in answers if a.status == 200]
    assert len(credited) == 1
    assert ok(credited[0])["credited"] == str(2 * ONE + 3)
    for answer in answers:
        if answer.status != 200:
            problem(answer, 409, "already_redeemed")
    assert await client.balance(payee.address) == 2 * ONE + 3
    assert (await client.channel(cid))["redeemed"] == str(2 * ONE + 3)
    assert await totals(client) == (10 * ONE, 9 * ONE + 3, ONE - 3)


async def test_64_concurrent_copies_of_an_open_open_once(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = await funded(client), PayerKey.generate()
    call = await signed_open(client, payer, payee, 3 * ONE)
    answers = await asyncio.gather(*(post_call(session, ledger.url, call) for _ in range(64)))
    bodies = [ok(a) for a in answers]
    assert sorted(b["replayed"] for b in bodies) == [False] + [True] * 63
    assert len({b["channel"]["channel_id"] for b in bodies}) == 1
    assert len(await client.channels(payer.address)) == 1
    assert await client.balance(payer.address) == 7 * ONE
    assert await nonce(client, payer) == 1
    assert await totals(client) == (10 * ONE, 7 * ONE, 3 * ONE)


# -- malformed input --------------------------------------------------------------------

_OPEN_FIELDS = {
    "type": "open", "payer": "T" * 34, "payee": "T" * 34, "asset": "btt_local",
    "deposit": "1", "expires_at": "1", "salt": "00" * 32, "nonce": "0", "signature": "00" * 65,
}  # fmt: skip


def _call_with(**fields: str) -> bytes:
    return json.dumps({**_OPEN_FIELDS, **fields}).encode()


@pytest.mark.parametrize(
    ("method", "path", "data", "headers"),
    [
        pytest.param("POST", "/v1/calls", b'{"type": "open",', None, id="truncated-json"),
        pytest.param("POST", "/v1/calls", b"", None, id="empty-body"),
        pytest.param("POST", "/v1/calls", b"\xff\xfe{}", None, id="not-utf8"),
        pytest.param("POST", "/v1/calls", b"[]", None, id="array"),
        pytest.param("POST", "/v1/calls", b"null", None, id="null"),
        pytest.param("POST", "/v1/calls", b'{"type": "close"}', None, id="unknown-type"),
        pytest.param("POST", "/v1/calls", b'{"type": "open"}', None, id="missing-fields"),
        pytest.param("POST", "/v1/calls", b'{"type": "open", "memo": "hi"}', None, id="extra"),
        pytest.param("POST", "/v1/calls", b'{"type": "open", "deposit": 1}', None, id="int-field"),
        pytest.param("POST", "/v1/calls", b"{" + b'"a":1,' * 3000 + b'"b":2}', None, id="huge"),
        pytest.param("POST", "/v1/calls", _call_with(payer=""), None, id="empty-payer"),
        pytest.param("POST", "/v1/calls", _call_with(nonce="²"), None, id="superscript-nonce"),
        pytest.param("POST", "/v1/calls", _call_with(asset="__class__"), None, id="odd-asset"),
        pytest.param("POST", "/v1/calls", _call_with(salt="zz" * 32), None, id="non-hex-salt"),
        pytest.param("POST", "/v1/calls", b"[" * 16000, None, id="deeply-nested"),
        pytest.param(
            "POST", "/v1/faucet", b'{"address": ' + b"1" * 5000 + b"}", None, id="huge-json-integer"
        ),
        pytest.param(
            "POST",
            "/v1/faucet",
            b"{}",
            {"Content-Type": "application/json; charset=no-such-charset"},
            id="unknown-charset",
        ),
        pytest.param("POST", "/v1/redeem", b"{}", None, id="redeem-no-voucher"),
        pytest.param("POST", "/v1/redeem", b'{"voucher": "!!!"}', None, id="voucher-not-b64"),
        pytest.param("POST", "/v1/redeem", b'{"voucher": "QVRWAQ"}', None, id="voucher-short"),
        pytest.param("POST", "/v1/redeem", b'{"voucher": 7}', None, id="voucher-not-text"),
        pytest.param("GET", "/v1/calls", None, None, id="wrong-method"),
        pytest.param("GET", "/v1/nothing-here", None, None, id="unknown-path"),
        pytest.param("GET", "/v1/accounts/Tnope", None, None, id="bad-address"),
        pytest.param("GET", "/v1/accounts/{payer}/history?limit=0", None, None, id="limit-0"),
        pytest.param("GET", "/v1/accounts/{payer}/history?limit=x", None, None, id="limit-x"),
        pytest.param(
            "GET",
            "/v1/accounts/{payer}/history?limit=%C2%B2",
            None,
            None,
            id="limit-superscript-digit",
        ),
        pytest.param("GET", "/v1/channels/abc", None, None, id="short-channel-id"),
        pytest.param("GET", "/v1/channels/" + "zz" * 32, None, None, id="non-hex-channel-id"),
    ],
)
async def test_malformed_requests_get_a_json_problem(
    shared_ledger: Running,
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    data: bytes | None,
    headers: dict[str, str] | None,
) -> None:
    ledger, client = shared_ledger, LedgerClient(shared_ledger.url, session)
    path = path.replace("{payer}", str(PayerKey.generate().address))
    answer = await send(session, method, ledger.url + path, data=data, headers=headers)
    client_problem(answer)
    assert await totals(client) == (0, 0, 0)


async def test_extra_fields_in_a_signed_call_are_refused(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = await funded(client), PayerKey.generate()
    call = (await signed_open(client, payer, payee, ONE)).to_json()
    for extra in ({"memo": "x"}, {"channel_id": "00" * 32}, {"replayed": "true"}):
        answer = await send(session, "POST", f"{ledger.url}/v1/calls", json_body={**call, **extra})
        assert "unknown fields" in problem(answer, 400, "malformed_message")
    for key in ("salt", "signature", "nonce"):
        missing = {k: v for k, v in call.items() if k != key}
        answer = await send(session, "POST", f"{ledger.url}/v1/calls", json_body=missing)
        problem(answer, 400, "malformed_message")
    assert await nonce(client, payer) == 0


async def test_a_body_above_16_kib_is_refused(
    shared_ledger: Running, session: aiohttp.ClientSession
) -> None:
    ledger = shared_ledger
    body = {**_OPEN_FIELDS, "salt": "00" * 9000}
    answer = await send(session, "POST", f"{ledger.url}/v1/calls", json_body=body)
    assert answer.status == 413
    assert answer.content_type == PROBLEM_JSON
    problem(answer, 413, "request_entity_too_large")


@pytest.mark.parametrize("expires_at", [2**63 - 1, 2**63, U64_MAX])
async def test_any_u64_expiry_is_stored_or_refused_cleanly(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession, expires_at: int
) -> None:
    """``expiresAt`` is a uint64 in the signed call; SQLite integers stop at 2**63 - 1."""
    payer, payee = await funded(client), PayerKey.generate()
    domain = await client.domain()
    op = OpenChannel(
        payer.address, payee.address, BTT_LOCAL, ONE, expires_at, secrets.token_bytes(32), 0
    )
    answer = await post_call(session, ledger.url, sign_op(payer, domain, op))
    if answer.status == 200:
        assert ok(answer)["channel"]["expires_at"] == expires_at
        assert await client.balance(payer.address) == 9 * ONE
    else:
        client_problem(answer)
        assert await client.balance(payer.address) == 10 * ONE
    await totals(client)

    cid = await open_channel(client, payer, payee, ONE)
    n = await nonce(client, payer)
    top_up = TopUpChannel(payer.address, cid, ONE, expires_at, n)
    answer = await post_call(session, ledger.url, sign_op(payer, domain, top_up))
    if answer.status == 200:
        assert ok(answer)["channel"]["expires_at"] == expires_at
    else:
        client_problem(answer)
        assert await nonce(client, payer) == n
    await totals(client)


# -- reads ---------------------------------------------------------------------------------


async def test_read_api(
    ledger: Running, client: LedgerClient, session: aiohttp.ClientSession
) -> None:
    payer, payee = await funded(client, 4 * ONE), PayerKey.generate()
    cid = await open_channel(client, payer, payee, ONE)
    await client.redeem(await voucher(client, payer, payee, cid, ONE // 4))

    account = ok(await send(session, "GET", f"{ledger.url}/v1/accounts/{payer.address}"))
    assert account == {
        "address": str(payer.address),
        "next_nonce": "1",
        "balances": {BTT_LOCAL.uri: str(3 * ONE)},
    }
    by_hex = ok(await send(session, "GET", f"{ledger.url}/v1/accounts/{payer.address.raw.hex()}"))
    assert by_hex == account
    stranger = PayerKey.generate().address
    assert ok(await send(session, "GET", f"{ledger.url}/v1/accounts/{stranger}")) == {
        "address": str(stranger), "next_nonce": "0", "balances": {},
    }  # fmt: skip

    channel = await client.channel(cid)
    assert channel["redeemed"] == str(ONE // 4)
    assert await client.channels(payer.address) == [channel]
    assert await client.channels(payee.address) == [channel]
    assert await client.channels(stranger) == []

    history = ok(await send(session, "GET", f"{ledger.url}/v1/accounts/{payer.address}/history"))
    events = history["events"]
    assert [e["kind"] for e in events] == ["redeem", "open", "mint"]
    assert [e["amount"] for e in events] == [str(ONE // 4), str(ONE), str(4 * ONE)]
    redeem, opened, mint = events
    assert redeem["address"] == str(payee.address)
    assert redeem["counterparty"] == str(payer.address)
    assert redeem["channel_id"] == opened["channel_id"] == cid.hex()
    assert opened["address"] == str(payer.address)
    assert opened["counterparty"] == str(payee.address)
    assert mint["counterparty"] is None and mint["channel_id"] is None
    assert all(e["asset"] == BTT_LOCAL.uri for e in events)
    limited = await send(
        session, "GET", f"{ledger.url}/v1/accounts/{payer.address}/history?limit=1"
    )
    assert ok(limited)["events"] == events[:1]
    payee_history = await send(session, "GET", f"{ledger.url}/v1/accounts/{payee.address}/history")
    assert [e["kind"] for e in ok(payee_history)["events"]] == ["redeem", "open"]

    answer = await send(session, "GET", f"{ledger.url}/v1/channels/{cid.hex()[:-2]}")
    problem(answer, 400, "bad_request")
    answer = await send(session, "GET", f"{ledger.url}/v1/channels/{'ab' * 32}")
    problem(answer, 404, "not_found")
    answer = await send(session, "GET", f"{ledger.url}/v1/channels/{cid.hex().upper()}")
    assert ok(answer) == channel


async def test_ledger_client_reports_refusals_as_ledger_errors(client: LedgerClient) -> None:
    payer, payee = await funded(client, ONE), PayerKey.generate()
    with pytest.raises(LedgerError) as refused:
        await open_channel(client, payer, payee, 2 * ONE)
    assert (refused.value.status, refused.value.code) == (402, "insufficient_funds")
