"""The local faucet is bounded (issue 13, defect 14): it minted 2,000,000 BTT in 0.8 s for
anyone who asked. Now only clients on the ledger's machine may use it, and it gives at
most so much per address and in all over any minute, refusing the rest with ``429
faucet_limit`` and a ``Retry-After``."""

from __future__ import annotations

import aiohttp
import pytest

from cdn_edge.ledger.faucet import (
    WINDOW,
    FaucetLimited,
    FaucetLimits,
    FaucetMeter,
    is_local_request,
)
from launcher import up_ledger as launcher
from requester.protocol import PayerKey
from tests.ledger.support import ONE, ok, problem, send
from tests.processes import Running

GRANT = 1000
"""BTT asked for per request: the largest grant."""
Answer = tuple[dict[str, object] | str, str]


async def _ask(session: aiohttp.ClientSession, ledger: str, address: str, btt: int) -> Answer:
    """A faucet request: its JSON body (or problem detail) and its Retry-After."""
    body = {"address": address, "amount": str(btt)}
    async with session.post(f"{ledger}/v1/faucet", json=body) as resp:
        answer = await resp.json(content_type=None)
        if resp.status == 200:
            return answer, ""
        assert resp.status == 429 and resp.content_type == "application/problem+json", answer
        assert answer["type"].endswith("/faucet_limit"), answer
        return str(answer["detail"]), resp.headers.get("Retry-After", "")


async def test_the_faucet_stops_at_its_per_minute_bound(
    ledger: Running, session: aiohttp.ClientSession
) -> None:
    """The defect's attack, fresh addresses one after another: 100 grants of 1000 BTT go
    through (the default 100,000 BTT a minute), the next is refused."""
    minted = 0
    for _ in range(100):
        body, _ = await _ask(session, ledger.url, str(PayerKey.generate().address), GRANT)
        assert isinstance(body, dict)
        minted += int(str(body["minted"]))
    refused, retry = await _ask(session, ledger.url, str(PayerKey.generate().address), GRANT)
    assert isinstance(refused, str) and "100000 BTT per minute in all" in refused
    assert 1 <= int(retry) <= WINDOW
    async with session.get(f"{ledger.url}/v1/info") as resp:
        totals = (await resp.json())["totals"]
    assert int(totals["minted"]) == minted == 100_000 * ONE


async def test_one_address_gets_at_most_its_share_per_minute(
    ledger: Running, session: aiohttp.ClientSession
) -> None:
    address = str(PayerKey.generate().address)
    for _ in range(2):
        assert isinstance((await _ask(session, ledger.url, address, GRANT))[0], dict)
    refused, retry = await _ask(session, ledger.url, address, 1)
    assert isinstance(refused, str)
    assert f"at most 2000 BTT per minute; {address} got 2000 BTT" in refused
    assert 1 <= int(retry) <= WINDOW and refused.endswith(f"; retry in {retry} s")
    other = str(PayerKey.generate().address)
    assert isinstance((await _ask(session, ledger.url, other, GRANT))[0], dict)


async def test_a_forwarded_request_is_not_local(
    ledger: Running, session: aiohttp.ClientSession
) -> None:
    """A reverse proxy on the ledger's machine connects from loopback for a stranger."""
    body = {"address": str(PayerKey.generate().address), "amount": "1"}
    for header in ("Forwarded", "X-Forwarded-For", "X-Real-IP"):
        answer = await send(session, "POST", f"{ledger.url}/v1/faucet", json_body=body,
                            headers={header: "203.0.113.9"})  # fmt: skip
        problem(answer, 403, "faucet_local_only")
    ok(await send(session, "POST", f"{ledger.url}/v1/faucet", json_body=body))


@pytest.mark.parametrize(
    ("remote", "local"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
     ("10.0.0.1", False), ("192.168.1.2", False), ("::ffff:10.0.0.1", False),
     ("2001:db8::1", False), ("0.0.0.0", False), ("localhost", False), ("", False),
     (None, False)],
)  # fmt: skip
def test_only_loopback_peers_are_local(remote: str | None, local: bool) -> None:
    assert is_local_request(remote, {}) is local


def test_the_meter_bounds_each_address_the_total_and_the_count_over_a_sliding_minute() -> None:
    meter = FaucetMeter(FaucetLimits(per_grant=5, per_address=10, per_minute=30,
                                     grants_per_minute=6))  # fmt: skip
    meter.take("A", 5, now=0.0)
    meter.take("A", 5, now=10.0)
    with pytest.raises(FaucetLimited) as per_address:
        meter.take("A", 1, now=20.0)
    assert per_address.value.retry_after == 40  # the grant at 0 leaves the window at 60
    for at, who in enumerate("BBCC", start=21):
        meter.take(who, 5, now=float(at))
    with pytest.raises(FaucetLimited) as per_minute:
        meter.take("D", 1, now=30.0)
    assert per_minute.value.retry_after == 30
    meter.take("D", 1, now=60.0)  # A's first grant has left the window
    with pytest.raises(FaucetLimited) as count:
        meter.take("E", 1, now=61.0)  # six grants in (1, 61]
    assert "6 grants per minute" in count.value.message and count.value.retry_after == 9
    meter.take("A", 5, now=200.0)  # all forgotten


def test_atlas_up_funding_fits_the_default_limits() -> None:
    """``atlas up`` funds its wallet and up to 16 edges from the faucet at once."""
    limits = FaucetLimits()
    assert limits.per_grant >= launcher.WALLET_FUNDS and limits.per_grant >= launcher.EDGE_FUNDS
    assert limits.per_minute >= launcher.WALLET_FUNDS + 16 * launcher.EDGE_FUNDS
    assert limits.grants_per_minute >= 17


def test_limits_that_contradict_each_other_are_refused() -> None:
    with pytest.raises(ValueError, match="per grant <= per address"):
        FaucetLimits(per_grant=10, per_address=5)
    with pytest.raises(ValueError, match="one grant"):
        FaucetLimits(grants_per_minute=0)
