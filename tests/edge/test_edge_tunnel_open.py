"""Opening a tunnel over HTTP before its CONNECT: ``POST /v1/tunnels/{id}/open``.

A proxy must tell its own client whether a tunnel can be opened before it
answers that client's CONNECT. The edge connects to the target and charges the
first unit on the HTTP port, answering the verdict (200 with the tunnel's status,
or a problem such as 502 ``target_unreachable``); the CONNECT naming the id then
attaches to the connected target without paying again.
"""

from __future__ import annotations

import json
import socket

import aiohttp

from tests.edge.edge_client import metrics, problem
from tests.edge.paying import open_channel, voucher_header
from tests.edge.tunnel_client import (
    UNIT,
    connect,
    echo_through,
    new_id,
    open_tunnel,
    opened,
    status,
    target_of,
    tunnel_info,
    wait_status,
)
from tests.processes import Running


def closed_port() -> int:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_open_then_connect_attaches_to_the_paid_target(
    ledger: Running, paid_edge: Running, echo: Running
) -> None:
    target = target_of(echo.url)
    async with aiohttp.ClientSession() as session:
        tunnel_url, price = await tunnel_info(session, paid_edge.url)
        channel = await open_channel(session, ledger.url, paid_edge.url)
        before = await metrics(session, paid_edge.url)
        tunnel_id = new_id()
        answer = await open_tunnel(session, paid_edge.url, tunnel_id, target,
                                   voucher_header(channel, price))  # fmt: skip
        assert answer[0] == 200, answer
        assert json.loads(answer[1]) == {
            "id": tunnel_id, "target": target, "relayed": 0, "paid_bytes": UNIT, "open": True,
            "paused": False, "reason": None,
        }  # fmt: skip
        async with opened(tunnel_url, target, tunnel_id) as tunnel:  # no voucher: paid already
            assert await echo_through(tunnel, b"x" * 1000) == b"x" * 1000
            doc = await status(session, paid_edge.url, tunnel_id)
        after = await metrics(session, paid_edge.url)
    assert doc["relayed"] == 2000 and doc["paid_bytes"] == UNIT
    paid = 'atlas_edge_tunnel_units_total{paid_by="voucher"}'
    assert after[paid] - before.get(paid, 0) == 1
    assert after["atlas_edge_tunnels_opened_total"] - before["atlas_edge_tunnels_opened_total"] == 1


async def test_open_refusals_leave_the_id_and_the_voucher_unused(
    ledger: Running, paid_edge: Running, echo: Running
) -> None:
    target = target_of(echo.url)
    async with aiohttp.ClientSession() as session:
        tunnel_url, price = await tunnel_info(session, paid_edge.url)
        channel = await open_channel(session, ledger.url, paid_edge.url)
        tunnel_id, one_unit = new_id(), voucher_header(channel, price)
        edge = paid_edge.url
        unreachable = await open_tunnel(
            session, edge, tunnel_id, f"127.0.0.1:{closed_port()}", one_unit
        )
        assert "cannot connect" in problem(unreachable, 502, "target_unreachable")
        unpaid = await open_tunnel(session, edge, tunnel_id, target)
        problem(unpaid, 402, "payment_required")
        assert int(unpaid[2]["Atlas-Price"]) == price and unpaid[2]["Atlas-Quote"]
        problem(await open_tunnel(session, edge, tunnel_id, "no-port"), 400, "malformed_message")
        problem(await open_tunnel(session, edge, "ABC", target, one_unit), 400, "malformed_message")
        # Same id, same voucher: neither was used up by the refusals.
        assert (await open_tunnel(session, edge, tunnel_id, target, one_unit))[0] == 200
        again = await open_tunnel(session, edge, tunnel_id, target, voucher_header(channel, price))
        problem(again, 409, "tunnel_in_use")
        elsewhere = await connect(tunnel_url, f"127.0.0.1:{closed_port()}", tunnel_id)
        assert elsewhere.status == 409 and elsewhere.code() == "tunnel_in_use"
        async with opened(tunnel_url, target, tunnel_id) as tunnel:
            assert await echo_through(tunnel, b"still there") == b"still there"


async def test_a_tunnel_never_attached_is_closed_after_ten_seconds(
    ledger: Running, paid_edge: Running, echo: Running
) -> None:
    target = target_of(echo.url)
    async with aiohttp.ClientSession() as session:
        tunnel_url, price = await tunnel_info(session, paid_edge.url)
        channel = await open_channel(session, ledger.url, paid_edge.url)
        tunnel_id = new_id()
        answer = await open_tunnel(session, paid_edge.url, tunnel_id, target,
                                   voucher_header(channel, price))  # fmt: skip
        assert answer[0] == 200, answer
        doc = await wait_status(session, paid_edge.url, tunnel_id, "open", False, within=15)
        late = await connect(tunnel_url, target, tunnel_id)
    assert doc["reason"] == "not_attached" and doc["relayed"] == 0
    assert late.status == 409 and late.code() == "tunnel_in_use"
