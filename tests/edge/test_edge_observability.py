"""What an operator watches: /healthz, the Prometheus counters, the HTML status page
(the page itself: test_edge_dashboard.py).

A dedicated edge, so every counter starts at zero and each one can be checked
to move by exactly what the test did: bytes and chunks sent, vouchers accepted
and refused by reason, fetches by cache status, and earned/redeemed amounts.
"""

from __future__ import annotations

import html
from pathlib import Path

import aiohttp

from requester.protocol import BTT_LOCAL, format_amount
from tests.edge.dashboard_network import card
from tests.edge.edge_client import fetch, get_chunk, metrics, request, wait_for_seal
from tests.edge.paying import edge_info, open_channel, voucher_header
from tests.origin_server import text
from tests.processes import Running, start_edge

CHUNK = 256 * 1024
CACHED = "metrics-page"
"""Name of the /cached/ resource (its body is text(5000) + the name)."""


def counter(samples: dict[str, float], name: str, **labels: str) -> float:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return samples.get(f"{name}{{{inner}}}" if inner else name, 0.0)


async def test_counters_and_status_page_follow_a_paid_fetch(
    tmp_path: Path, origin: Running, ledger: Running
) -> None:
    data_dir = tmp_path / "edge"
    edge = start_edge(data_dir, ledger.url, "--free-mib", "0")
    try:
        async with aiohttp.ClientSession() as session:
            health = await request(session, "GET", f"{edge.url}/healthz")
            before = await metrics(session, edge.url)
            fetched = await fetch(session, edge.url, f"{origin.url}/bytes/{CHUNK}")
            cid = fetched.info["content_id"]
            await wait_for_seal(session, edge.url, cid)
            cached = await fetch(session, edge.url, f"{origin.url}/cached/{CACHED}")
            await wait_for_seal(session, edge.url, cached.info["content_id"])
            hit = await fetch(session, edge.url, f"{origin.url}/cached/{CACHED}")
            unpaid = await get_chunk(session, edge.url, cid, 0)
            price = int(unpaid[2]["Atlas-Price"])
            channel = await open_channel(session, ledger.url, edge.url)
            header = voucher_header(channel, price)
            paid = await get_chunk(session, edge.url, cid, 0, {"Atlas-Voucher": header})
            replay = await get_chunk(session, edge.url, cid, 0, {"Atlas-Voucher": header})
            after = await metrics(session, edge.url)
            page = await request(session, "GET", f"{edge.url}/")
            info = await edge_info(session, edge.url)
        assert edge.stop() == 0  # redeems on the way out
        edge = start_edge(data_dir, ledger.url, "--free-mib", "0")
        async with aiohttp.ClientSession() as session:
            settled = await metrics(session, edge.url)
            settled_page = await request(session, "GET", f"{edge.url}/")
    finally:
        edge.stop()

    assert health[0] == 200 and health[1] == b'{"status": "ok"}'
    assert (unpaid[0], paid[0], replay[0], hit.info["cache"]) == (402, 200, 409, "HIT")

    def moved(name: str, **labels: str) -> float:
        return counter(after, name, **labels) - counter(before, name, **labels)

    assert moved("atlas_edge_sent_bytes_total") == CHUNK
    assert moved("atlas_edge_chunks_total", paid_by="voucher") == 1
    assert moved("atlas_edge_vouchers_total", outcome="accepted") == 1
    assert moved("atlas_edge_vouchers_total", outcome="stale_voucher") == 1
    # The bare 402 refused no voucher: it is not counted as a refusal.
    assert not any(k.startswith("atlas_edge_vouchers_total") and "payment_required" in k
                   for k in after)  # fmt: skip
    assert moved("atlas_edge_fetches_total", cache="MISS") == 2
    assert moved("atlas_edge_fetches_total", cache="HIT") == 1
    assert counter(after, "atlas_edge_earned_btt_total") == price / BTT_LOCAL.one
    assert counter(after, "atlas_edge_redeemed_btt_total") == 0
    stored = CHUNK + len(text(5000)) + len(CACHED)
    assert counter(after, "atlas_edge_stored_bytes") == stored
    assert counter(settled, "atlas_edge_earned_btt_total") == price / BTT_LOCAL.one
    assert counter(settled, "atlas_edge_redeemed_btt_total") == price / BTT_LOCAL.one

    status, body, headers = page
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    shown = body.decode()
    earned = html.escape(format_amount(price, BTT_LOCAL))
    for part in (info["node_id"], info["payee"], str(channel.terms.payer),
                 channel.terms.channel_id.hex()[:16]):  # fmt: skip
        assert part in shown, part
    assert card(shown, "Unredeemed") == earned
    assert card(settled_page[1].decode(), "Redeemed") == earned
