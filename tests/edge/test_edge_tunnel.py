"""CONNECT tunnels through a real edge to a real TCP echo server: paying, metering, closing.

The edge listens for tunnels on a second port (``tunnel`` in ``/v1/info``);
each tunnel is paid per 64 KiB unit of bytes relayed in both directions, and
must never relay a byte that was not paid for.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import aiohttp

from requester.protocol import ANY_CONTENT, Quote, b64url_decode
from tests.edge.edge_client import metrics, problem, request
from tests.edge.paying import open_channel, voucher_header
from tests.edge.tunnel_client import (
    UNIT,
    connect,
    echo_through,
    new_id,
    opened,
    pay,
    status,
    target_of,
    tunnel_info,
    wait_status,
)
from tests.processes import Running, start_edge


async def test_info_names_the_tunnel_port_and_a_unit_is_priced_like_a_chunk(
    paid_edge: Running,
) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{paid_edge.url}/v1/info") as r:
            info = await r.json()
        async with session.get(f"{paid_edge.url}/v1/tunnel/quote") as r:
            doc = await r.json()
    assert info["tunnel"].startswith("http://127.0.0.1:") and info["tunnel"] != paid_edge.url
    quote = Quote.decode(b64url_decode(doc["quote"], 400, "quote"))
    assert quote.content_id == ANY_CONTENT
    assert quote.edge_id.hex() == info["node_id"] and str(quote.payee) == info["payee"]
    assert quote.valid_until - time.time() >= 299
    assert doc["unit"] == UNIT
    assert int(doc["price"]) == quote.chunk_price(UNIT) == 10**15 // 16  # 0.001 BTT per MiB


async def test_402_quote_then_voucher_opens_a_tunnel_that_echoes_a_mebibyte(
    ledger: Running, paid_edge: Running, echo: Running
) -> None:
    target = target_of(echo.url)
    data = secrets.token_bytes(1 << 20)
    async with aiohttp.ClientSession() as session:
        tunnel_url, price = await tunnel_info(session, paid_edge.url)
        before = await metrics(session, paid_edge.url)
        tunnel_id = new_id()
        refused = await connect(tunnel_url, target, tunnel_id)
        assert refused.status == 402 and refused.code() == "payment_required"
        quote = Quote.decode(b64url_decode(refused.headers["atlas-quote"], 400, "quote"))
        assert quote.chunk_price(UNIT) == int(refused.headers["atlas-price"]) == price
        channel = await open_channel(session, ledger.url, paid_edge.url)
        # A refused CONNECT leaves its id free: the paid retry uses the same one.
        async with opened(tunnel_url, target, tunnel_id, voucher_header(channel, price)) as tunnel:
            more = voucher_header(channel, 40 * price)
            ok = await pay(session, paid_edge.url, tunnel_id, more, 40)
            assert ok[0] == 200, ok
            assert await echo_through(tunnel, data) == data
            doc = await status(session, paid_edge.url, tunnel_id)
        after = await metrics(session, paid_edge.url)
    assert doc == {
        "id": tunnel_id, "target": target, "relayed": 2 << 20, "paid_bytes": 41 * UNIT,
        "open": True, "paused": False, "reason": None,
    }  # fmt: skip

    def delta(key: str) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert delta('atlas_edge_tunnel_bytes_total{direction="up"}') == 1 << 20
    assert delta('atlas_edge_tunnel_bytes_total{direction="down"}') == 1 << 20
    assert delta('atlas_edge_tunnel_units_total{paid_by="voucher"}') == 41
    assert delta("atlas_edge_tunnels_opened_total") == 1
    assert delta('atlas_edge_tunnels_refused_total{reason="payment_required"}') == 1


async def test_relay_pauses_at_the_paid_limit_and_resumes_when_more_is_paid(
    ledger: Running, paid_edge: Running, echo: Running
) -> None:
    data = secrets.token_bytes(100_000)  # 200 000 bytes through the tunnel: four units
    tunnel_id = new_id()
    seen: list[dict[str, object]] = []
    async with aiohttp.ClientSession() as session:
        tunnel_url, price = await tunnel_info(session, paid_edge.url)
        channel = await open_channel(session, ledger.url, paid_edge.url)

        async def watch() -> None:
            while True:
                seen.append(await status(session, paid_edge.url, tunnel_id))
                await asyncio.sleep(0.005)

        async with (
            opened(tunnel_url, target_of(echo.url), tunnel_id, voucher_header(channel, price))
            as tunnel,
            asyncio.TaskGroup() as tasks,
        ):  # fmt: skip
            watcher = tasks.create_task(watch())
            echoed = tasks.create_task(echo_through(tunnel, data))
            for paid_units, more in ((1, 1), (2, 2)):
                doc = await wait_status(session, paid_edge.url, tunnel_id, "paused", True)
                assert doc["relayed"] == doc["paid_bytes"] == paid_units * UNIT
                await asyncio.sleep(0.3)  # paused means paused: nothing more moves
                assert (await status(session, paid_edge.url, tunnel_id))["relayed"] == doc[
                    "relayed"
                ]
                assert not echoed.done()
                answer = await pay(
                    session, paid_edge.url, tunnel_id, voucher_header(channel, more * price), more
                )
                assert answer[0] == 200, answer
            assert await echoed == data
            watcher.cancel()
        final = await status(session, paid_edge.url, tunnel_id)
    assert final["relayed"] == 200_000 and final["paid_bytes"] == 4 * UNIT
    assert len(seen) > 10
    for doc in seen:
        assert isinstance(doc["relayed"], int) and isinstance(doc["paid_bytes"], int)
        assert doc["relayed"] <= doc["paid_bytes"], doc


async def test_64_copies_of_one_pay_voucher_are_credited_once(
    ledger: Running, paid_edge: Running, echo: Running
) -> None:
    tunnel_id = new_id()
    async with aiohttp.ClientSession() as session:
        tunnel_url, price = await tunnel_info(session, paid_edge.url)
        channel = await open_channel(session, ledger.url, paid_edge.url)
        opening = voucher_header(channel, price)
        async with opened(tunnel_url, target_of(echo.url), tunnel_id, opening):
            header = voucher_header(channel, 2 * price)
            answers = await asyncio.gather(
                *(pay(session, paid_edge.url, tunnel_id, header, 2) for _ in range(64))
            )
            doc = await status(session, paid_edge.url, tunnel_id)
    statuses = sorted(a[0] for a in answers)
    assert statuses.count(200) == 1 and statuses.count(409) == 63, statuses
    for answer in answers:
        if answer[0] == 409:
            problem(answer, 409, "stale_voucher")
    assert doc["paid_bytes"] == 3 * UNIT


async def test_a_tunnel_closed_by_the_target_is_reported_closed_and_keeps_its_id(
    ledger: Running, paid_edge: Running, echo: Running
) -> None:
    tunnel_id = new_id()
    async with aiohttp.ClientSession() as session:
        tunnel_url, price = await tunnel_info(session, paid_edge.url)
        channel = await open_channel(session, ledger.url, paid_edge.url)
        target = target_of(echo.url)
        async with opened(tunnel_url, target, tunnel_id, voucher_header(channel, price)) as tunnel:
            tunnel.writer.write(b"bye QUIT")  # the echo server hangs up after echoing this
            async with asyncio.timeout(5):
                assert await tunnel.reader.read() == b"bye QUIT"  # then EOF
            doc = await wait_status(session, paid_edge.url, tunnel_id, "open", False)
        assert doc["reason"] == "closed_by_target" and doc["relayed"] == 16
        late = await pay(session, paid_edge.url, tunnel_id, voucher_header(channel, price))
        reused = await connect(tunnel_url, target, tunnel_id, voucher_header(channel, price))
    problem(late, 409, "tunnel_closed")
    assert reused.status == 409 and reused.code() == "tunnel_in_use"


async def test_pay_refusals_credit_nothing(
    ledger: Running, paid_edge: Running, echo: Running
) -> None:
    tunnel_id = new_id()
    async with aiohttp.ClientSession() as session:
        tunnel_url, price = await tunnel_info(session, paid_edge.url)
        channel = await open_channel(session, ledger.url, paid_edge.url)
        opening = voucher_header(channel, price)
        async with opened(tunnel_url, target_of(echo.url), tunnel_id, opening):
            edge = paid_edge.url
            problem(await pay(session, edge, new_id(), opening), 404, "unknown_tunnel")
            problem(await pay(session, edge, "ABC", opening), 400, "malformed_message")
            for units in ("0", "1025", "x", "-1", "1.5"):
                problem(await pay(session, edge, tunnel_id, None, units), 400, "malformed_message")
            unpaid = await pay(session, edge, tunnel_id, None, 3)
            problem(unpaid, 402, "payment_required")
            assert int(unpaid[2]["Atlas-Price"]) == 3 * price and unpaid[2]["Atlas-Quote"]
            problem(await pay(session, edge, tunnel_id, opening), 409, "stale_voucher")
            short = voucher_header(channel, price)
            problem(await pay(session, edge, tunnel_id, short, 2), 402, "underpaid")
            problem(await pay(session, edge, tunnel_id, "!!!"), 400, "malformed_message")
            doc = await status(session, edge, tunnel_id)
    assert doc["paid_bytes"] == UNIT and doc["open"]


async def test_free_allowance_pays_units_and_shutdown_closes_tunnels(
    tmp_path: Path, ledger: Running, echo: Running
) -> None:
    edge = start_edge(tmp_path / "free-tunnel-edge", ledger.url, "--free-mib", "1")
    try:
        async with aiohttp.ClientSession() as session:
            tunnel_url, _ = await tunnel_info(session, edge.url)
            tunnel_id = new_id()
            async with opened(tunnel_url, target_of(echo.url), tunnel_id) as tunnel:
                data = secrets.token_bytes(200_000)  # seven units, each from the allowance
                assert await echo_through(tunnel, data) == data
                doc = await status(session, edge.url, tunnel_id)
                assert doc["relayed"] == 400_000 and doc["paid_bytes"] == 7 * UNIT
                samples = await metrics(session, edge.url)
                assert samples['atlas_edge_tunnel_units_total{paid_by="free"}'] == 7
                stopping = asyncio.create_task(asyncio.to_thread(edge.stop))
                async with asyncio.timeout(10):
                    assert await tunnel.reader.read() == b""  # closed by the edge, cleanly
                assert await stopping == 0
    finally:
        edge.stop()


async def test_no_tunnel_runs_no_listener(tmp_path: Path, ledger: Running) -> None:
    edge = start_edge(tmp_path / "no-tunnel-edge", ledger.url, "--no-tunnel")
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{edge.url}/v1/info") as r:
                info = await r.json()
            answer = await request(session, "GET", f"{edge.url}/v1/tunnel/quote")
    finally:
        assert edge.stop() == 0
    assert info["tunnel"] is None
    problem(answer, 404, "not_found")
