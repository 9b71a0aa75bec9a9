"""Chunk runs on a real edge (``GET /v1/run/{content}/{first}?count=K``, issue 18).

One request, one payment ahead for the whole run, recorded before the first frame;
every frame verified here against the content's head with the protocol's codec; what
was paid ahead and not charged stays the payer's credit, recorded before the trailer,
and also when the requester leaves mid-run. The edge's books are read with ``atlas edge
earnings`` (``served`` is the channel's consumed amount)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp

from requester.ledger_client import LedgerClient
from requester.protocol import ManifestHead, PayerKey, TronAddress, b64url_decode
from requester.protocol.chunk_run import (
    FRAME_HEADER_SIZE,
    RUN_CONTENT_TYPE,
    RunEnd,
    decode_frame_header,
)
from requester.protocol.manifest import MAX_CHUNKS
from tests.edge.conftest import Pair
from tests.edge.edge_client import fetch, get_chunk, metrics, problem, request, wait_for_seal
from tests.edge.paying import (
    FUNDS,
    channel_earnings,
    credit_header,
    earnings,
    edge_info,
    open_channel,
    voucher_header,
)
from tests.edge.run_client import get_run, run_url
from tests.edge.test_edge_market import MARKET
from tests.edge.test_edge_replication import listed
from tests.origin_server import pattern, text
from tests.processes import Running, start_edge

CHUNK = 256 * 1024
CHUNKS_PAID = 'atlas_edge_chunks_total{paid_by="voucher"}'


async def _cached(session: aiohttp.ClientSession, edge: str, url: str) -> tuple[str, ManifestHead]:
    fetched = await fetch(session, edge, url)
    cid = fetched.info["content_id"]
    await wait_for_seal(session, edge, cid)
    return cid, fetched.head


async def _chunk_price(session: aiohttp.ClientSession, edge: str, cid: str) -> int:
    """What one full chunk costs here: the price a 402 states."""
    status, _, headers = await get_chunk(session, edge, cid, 0)
    assert status == 402, status
    return int(headers["Atlas-Price"])


async def _books(data_dir: Path, channel_id: bytes) -> tuple[int, int]:
    """(paid, served) of one channel in the edge's books; (0, 0) if never recorded."""
    row = channel_earnings(await earnings(data_dir), channel_id)
    return (0, 0) if row is None else (int(row["paid"]), int(row["served"]))


async def test_a_paid_run_of_16_is_the_content_for_one_voucher(
    tmp_path: Path, origin: Running, ledger: Running
) -> None:
    edge = start_edge(tmp_path / "edge", ledger.url, "--free-mib", "0")
    try:
        async with aiohttp.ClientSession() as session:
            cid, head = await _cached(session, edge.url, f"{origin.url}/bytes/{16 * CHUNK}?r=16")
            price = await _chunk_price(session, edge.url, cid)
            channel = await open_channel(session, ledger.url, edge.url)
            before = (await metrics(session, edge.url)).get(CHUNKS_PAID, 0.0)
            paid = {"Atlas-Voucher": voucher_header(channel, 20 * price)}
            run = await get_run(session, edge.url, cid, 0, 16, head, paid)
            after = (await metrics(session, edge.url)).get(CHUNKS_PAID, 0.0)
            info = await edge_info(session, edge.url)
        assert run.status == 200, run.problem
        assert run.headers["Content-Type"] == RUN_CONTENT_TYPE
        assert run.headers["Atlas-Paid-By"] == "voucher"
        # Held, sent as stored and paid: its length is known and the bodies go by sendfile.
        assert int(run.headers["Content-Length"]) == 16 * (FRAME_HEADER_SIZE + CHUNK) + 20
        assert run.data == pattern(0, 16 * CHUNK)
        assert [(f.price, f.paid_by, f.lane, f.zstd) for f in run.frames] == [
            (price, "voucher", "paid", False)
        ] * 16
        assert run.trailer is not None
        assert (run.trailer.reason, run.trailer.frames, run.trailer.charged) == (
            RunEnd.COMPLETE, 16, 16 * price,
        )  # fmt: skip
        assert after - before == 16
        assert info["runs"] == {"version": 1, "max_count": 64}
        # One voucher paid 20 chunks' worth: 16 consumed, 4 the payer's credit.
        assert await _books(tmp_path / "edge", channel.terms.channel_id) == (20 * price, 16 * price)
    finally:
        edge.stop()


async def test_a_run_past_the_end_stops_with_end_and_charges_what_was_sent(
    origin: Running, ledger: Running, paid_edge: Running
) -> None:
    async with aiohttp.ClientSession() as session:
        cid, head = await _cached(session, paid_edge.url, f"{origin.url}/bytes/{5 * CHUNK}?r=end")
        price = await _chunk_price(session, paid_edge.url, cid)
        key = PayerKey.generate()
        channel = await open_channel(session, ledger.url, paid_edge.url, key=key)
        # The payment ahead covers the run clipped to the sealed end: 3 chunks.
        short = {"Atlas-Voucher": voucher_header(channel, 3 * price)}
        run = await get_run(session, paid_edge.url, cid, 2, 8, head, short)
        beyond = await request(session, "GET", run_url(paid_edge.url, cid, 5, 1))
        chunk = await get_chunk(session, paid_edge.url, cid, 0,
                                credit_header(key, channel.terms, cid, 0))  # fmt: skip
    assert run.status == 200, run.problem
    assert run.data == pattern(2 * CHUNK, 3 * CHUNK)
    assert run.trailer is not None
    assert (run.trailer.reason, run.trailer.frames, run.trailer.charged) == (
        RunEnd.END, 3, 3 * price,
    )  # fmt: skip
    assert problem(beyond, 416, "beyond_end") == "content has 5 chunks; 5 is past the end"
    # Nothing of the voucher is left as credit: it paid exactly the three frames sent.
    assert chunk[0] == 402, chunk[1][:300]


async def test_a_short_payment_is_402_with_the_runs_price_and_charges_nothing(
    tmp_path: Path, origin: Running, ledger: Running
) -> None:
    edge = start_edge(tmp_path / "edge", ledger.url, "--free-mib", "0")
    try:
        async with aiohttp.ClientSession() as session:
            cid, _ = await _cached(session, edge.url, f"{origin.url}/bytes/{16 * CHUNK}?r=402")
            price = await _chunk_price(session, edge.url, cid)
            channel = await open_channel(session, ledger.url, edge.url)
            unpaid = await request(session, "GET", run_url(edge.url, cid, 0, 16))
            short_pay = {"Atlas-Voucher": voucher_header(channel, 15 * price)}
            short = await request(session, "GET", run_url(edge.url, cid, 0, 16), headers=short_pay)
        for answer in (unpaid, short):
            assert answer[0] == 402, answer[1][:300]
            assert answer[2]["Atlas-Price"] == str(16 * price)
            assert answer[2]["Atlas-Quote"]
        problem(short, 402, "underpaid")
        assert await _books(tmp_path / "edge", channel.terms.channel_id) == (0, 0)
    finally:
        edge.stop()


async def test_a_free_run_stops_unpaid_once_the_allowance_is_used_up(
    edges: tuple[Path, list[Running]], origin: Running, ledger: Running
) -> None:
    root, started = edges
    edge = start_edge(root / "free", ledger.url, "--free-mib", "1")  # four chunks a window
    started.append(edge)
    async with aiohttp.ClientSession() as session:
        cid, head = await _cached(session, edge.url, f"{origin.url}/bytes/{8 * CHUNK}?r=free")
        run = await get_run(session, edge.url, cid, 0, 8, head)
        again = await request(session, "GET", run_url(edge.url, cid, 4, 4))
    assert run.status == 200, run.problem
    assert "Content-Length" not in run.headers  # it may stop early: chunked
    assert run.data == pattern(0, 4 * CHUNK)
    assert {(f.price, f.paid_by, f.lane) for f in run.frames} == {(0, "free", "free")}
    assert run.trailer is not None
    assert (run.trailer.reason, run.trailer.frames, run.trailer.charged) == (RunEnd.UNPAID, 4, 0)
    assert "free allowance" in run.trailer.detail
    assert again[0] == 402 and "free allowance" in problem(again, 402, "payment_required")


async def test_a_market_edge_answers_409_and_offers_no_runs(
    edges: tuple[Path, list[Running]], origin: Running, ledger: Running
) -> None:
    root, started = edges
    market = start_edge(root / "market", ledger.url, *MARKET)
    started.append(market)
    async with aiohttp.ClientSession() as session:
        fetched = await fetch(session, market.url, f"{origin.url}/bytes/{2 * CHUNK}?r=market")
        cid = fetched.info["content_id"]
        answer = await request(session, "GET", run_url(market.url, cid, 0, 2))
        info = await edge_info(session, market.url)
        chunk = await get_chunk(session, market.url, cid, 0)  # the free lane
    problem(answer, 409, "runs_not_offered")
    assert "runs" not in info
    assert chunk[0] == 200 and "Atlas-Run-Max" not in chunk[2]


async def test_malformed_run_requests_get_400(origin: Running, free_edge: Running) -> None:
    async with aiohttp.ClientSession() as session:
        cid, _ = await _cached(session, free_edge.url, f"{origin.url}/bytes/{2 * CHUNK}?r=bad")
        chunk = await get_chunk(session, free_edge.url, cid, 0)
        url = free_edge.url
        answers = {
            what: await request(session, "GET", f"{url}/v1/run/{path}")
            for what, path in {
                "count 0": f"{cid}/0?count=0",
                "count 65": f"{cid}/0?count=65",
                "count x": f"{cid}/0?count=x",
                "count missing": f"{cid}/0",
                "count superscript": f"{cid}/0?count=%C2%B2",
                "index too big": f"{cid}/{MAX_CHUNKS}?count=1",
                "index not a number": f"{cid}/-1?count=1",
                "run past the limit": f"{cid}/{MAX_CHUNKS - 1}?count=2",
                "bad hex": f"{'zz' * 32}/0?count=1",
                "short id": f"{cid[:-2]}/0?count=1",
            }.items()
        }
        voucher = await request(session, "GET", run_url(url, cid, 0, 1),
                                headers={"Atlas-Voucher": "not-a-voucher"})  # fmt: skip
        unknown = await request(session, "GET", run_url(url, "ab" * 32, 0, 1))
        head = await request(session, "HEAD", run_url(url, cid, 0, 1))
    for what, answer in answers.items():
        assert problem(answer, 400, "malformed_message"), what
    problem(voucher, 400, "malformed_message")
    problem(unknown, 404, "not_found")
    assert head[0] == 405
    assert chunk[0] == 200 and chunk[2]["Atlas-Run-Max"] == "64"


async def test_a_requester_that_leaves_after_the_first_frame_keeps_the_rest_as_credit(
    tmp_path: Path, origin: Running, ledger: Running
) -> None:
    """The chunks arrive slowly (0.8 s each): the requester reads the first frame and
    closes; the edge notices when it would send the second, and refunds the 15 unsent."""
    edge = start_edge(tmp_path / "edge", ledger.url, "--free-mib", "0")
    try:
        async with aiohttp.ClientSession() as session:
            slow = await fetch(session, edge.url, f"{origin.url}/slow/{16 * CHUNK}?delay=0.05")
            cid = slow.info["content_id"]
            price = await _chunk_price(session, edge.url, cid)
            key = PayerKey.generate()
            channel = await open_channel(session, ledger.url, edge.url, key=key)
            paid = {"Atlas-Voucher": voucher_header(channel, 16 * price)}
            async with session.get(run_url(edge.url, cid, 0, 16), headers=paid) as r:
                assert r.status == 200
                assert "Content-Length" not in r.headers  # still arriving: chunked
                header = decode_frame_header(await r.content.readexactly(FRAME_HEADER_SIZE), CHUNK)
                assert await r.content.readexactly(header.wire_len) == pattern(0, CHUNK)
                r.close()  # the connection goes, not back to the pool
            books = (0, 0)
            async with asyncio.timeout(20):
                while books != (16 * price, price):
                    await asyncio.sleep(0.2)
                    books = await _books(tmp_path / "edge", channel.terms.channel_id)
            # The refund is credit the payer spends on the next chunk, without a voucher.
            status, body, headers = await get_chunk(
                session, edge.url, cid, 1, credit_header(key, channel.terms, cid, 1)
            )
        assert (header.index, header.price) == (0, price)
        assert status == 200 and body == pattern(CHUNK, CHUNK), body[:300]
        assert headers["Atlas-Paid-By"] == "credit"
    finally:
        edge.stop()


async def test_kill_9_right_after_a_run_loses_no_payment_state(
    tmp_path: Path, origin: Running, ledger: Running
) -> None:
    """zstd frames cost less than the full-size price paid ahead: the difference is
    returned to the channel's credit, durably, before the trailer; a SIGKILL just after
    the answer loses neither the voucher nor that refund."""
    data_dir = tmp_path / "edge"
    edge = start_edge(data_dir, ledger.url, "--free-mib", "0")
    try:
        async with aiohttp.ClientSession() as session:
            cid, head = await _cached(session, edge.url, f"{origin.url}/text/{8 * CHUNK}")
            price = await _chunk_price(session, edge.url, cid)
            channel = await open_channel(session, ledger.url, edge.url)
            headers = {"Atlas-Voucher": voucher_header(channel, 8 * price),
                       "Accept-Encoding": "zstd"}  # fmt: skip
            run = await get_run(session, edge.url, cid, 0, 8, head, headers)
        edge.kill9()
        assert edge.proc.returncode == -signal.SIGKILL
        assert run.status == 200, run.problem
        assert run.data == text(8 * CHUNK)
        assert all(f.zstd for f in run.frames)
        assert run.trailer is not None and run.trailer.reason == RunEnd.COMPLETE
        charged = run.trailer.charged
        assert 0 < charged < 8 * price and charged == sum(f.price for f in run.frames)
        assert await _books(data_dir, channel.terms.channel_id) == (8 * price, charged)
    finally:
        edge.stop()


async def test_a_replica_ends_a_run_not_held_and_never_buys_inside_one(
    origin: Running, ledger: Running, pair: Pair
) -> None:
    """B (a replica of A's content) holds none of it: a run gets no frame and costs nothing.
    Once /v1/chunk bought chunk 0 (paid first), a run from 0 sends what B holds, then stops
    NOT_HELD or completes; each frame charged once, the rest of the payment credit."""
    async with aiohttp.ClientSession() as session:
        await LedgerClient(ledger.url, session).faucet(
            TronAddress.parse((await edge_info(session, pair.b.url))["payee"]), FUNDS
        )
        cid, _ = await _cached(session, pair.a.url, f"{origin.url}/bytes/{8 * CHUNK}?r=replica")
        await listed(session, pair.a.url, cid, pair.a.url)
        status, body, _ = await request(session, "GET", f"{pair.b.url}/v1/content/{cid}")
        assert status == 200, body[:300]
        head = ManifestHead.decode(b64url_decode(json.loads(body)["head"], 1 << 20, "head"))
        price = await _chunk_price(session, pair.b.url, cid)
        channel = await open_channel(session, ledger.url, pair.b.url)
        none = await get_run(session, pair.b.url, cid, 0, 8, head,
                             {"Atlas-Voucher": voucher_header(channel, 8 * price)})  # fmt: skip
        bought = await get_chunk(session, pair.b.url, cid, 0,
                                 {"Atlas-Voucher": voucher_header(channel, price)})  # fmt: skip
        some = await get_run(session, pair.b.url, cid, 0, 8, head,
                             {"Atlas-Voucher": voucher_header(channel, 7 * price)})  # fmt: skip
    assert none.status == 200 and none.frames == []
    assert none.trailer is not None
    assert (none.trailer.reason, none.trailer.frames, none.trailer.charged) == (
        RunEnd.NOT_HELD, 0, 0,
    )  # fmt: skip
    # The first run's voucher was never taken: the next one's amount includes it.
    assert bought[0] == 200 and bought[1] == pattern(0, CHUNK), bought[1][:300]
    assert some.status == 200 and some.trailer is not None, some.problem
    frames = some.trailer.frames
    assert frames >= 1 and some.data == pattern(0, frames * CHUNK)
    assert some.trailer.reason == (RunEnd.COMPLETE if frames == 8 else RunEnd.NOT_HELD)
    assert some.trailer.charged == frames * price
    assert await _books(pair.b_dir, channel.terms.channel_id) == (
        16 * price, price + frames * price,
    )  # fmt: skip


async def test_a_run_is_one_transfer_of_its_client(
    edges: tuple[Path, list[Running]], origin: Running, ledger: Running
) -> None:
    """Runs waiting for chunks still arriving hold one transfer each (of the 32 a client
    may have), however many chunks they ask: with 31 waiting a chunk request passes; with
    32, it is 429."""
    root, started = edges
    edge = start_edge(root / "limit", ledger.url, "--free-mib", "4096")
    started.append(edge)
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        slow = await fetch(session, edge.url, f"{origin.url}/slow/{16 * CHUNK}?delay=0.05")
        cid = slow.info["content_id"]
        async with asyncio.timeout(10):  # chunk 0 held: asking for it never waits
            while True:
                if (await get_chunk(session, edge.url, cid, 0))[0] == 200:
                    break
                await asyncio.sleep(0.05)
        url = run_url(edge.url, cid, 12, 4)  # chunk 12 arrives ~10 s after the fetch
        waiting = [asyncio.create_task(request(session, "GET", url)) for _ in range(31)]
        await asyncio.sleep(1.0)
        passed = await get_chunk(session, edge.url, cid, 0)
        waiting.append(asyncio.create_task(request(session, "GET", url)))
        async with asyncio.timeout(10):
            while True:
                refused = await get_chunk(session, edge.url, cid, 0)
                if refused[0] != 200:
                    break
                await asyncio.sleep(0.05)
        run_refused = await request(session, "GET", url)
        assert not any(task.done() for task in waiting)
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
    assert passed[0] == 200, passed[1][:300]
    problem(refused, 429, "too_many_transfers")
    problem(run_refused, 429, "too_many_transfers")


async def test_a_run_paid_from_credit(origin: Running, ledger: Running, paid_edge: Running) -> None:
    """The payer's signed credit spend, naming the run's first chunk, pays the run ahead; a
    spend for another chunk, or the same one again, is refused."""
    async with aiohttp.ClientSession() as session:
        cid, head = await _cached(session, paid_edge.url, f"{origin.url}/bytes/{4 * CHUNK}?r=cr")
        price = await _chunk_price(session, paid_edge.url, cid)
        key = PayerKey.generate()
        channel = await open_channel(session, ledger.url, paid_edge.url, key=key)
        t = channel.terms
        first = await get_chunk(session, paid_edge.url, cid, 0,
                                {"Atlas-Voucher": voucher_header(channel, 6 * price)})  # fmt: skip
        wrong = await request(session, "GET", run_url(paid_edge.url, cid, 1, 3),
                              headers=credit_header(key, t, cid, 2))  # fmt: skip
        spend = credit_header(key, t, cid, 1)
        run = await get_run(session, paid_edge.url, cid, 1, 3, head, spend)
        again = await request(session, "GET", run_url(paid_edge.url, cid, 1, 3), headers=spend)
    assert first[0] == 200
    problem(wrong, 400, "wrong_binding")
    assert run.status == 200, run.problem
    assert run.headers["Atlas-Paid-By"] == "credit"
    assert run.data == pattern(CHUNK, 3 * CHUNK)
    assert {(f.price, f.paid_by, f.lane) for f in run.frames} == {(price, "credit", "paid")}
    assert run.trailer is not None and (run.trailer.frames, run.trailer.charged) == (3, 3 * price)
    problem(again, 409, "credit_spend_replayed")


async def test_a_run_over_content_that_fails_ends_content_failed(
    origin: Running, free_edge: Running
) -> None:
    """The origin promises 8 chunks and closes after 4. A run asked while the body arrives
    gets the frames held, then the content's failure as its end; asked after, the failure
    is the answer (as for /v1/chunk)."""
    async with aiohttp.ClientSession() as session:
        fetched = await fetch(session, free_edge.url, f"{origin.url}/short/{8 * CHUNK}?r=run")
        head, cid = fetched.head, fetched.info["content_id"]
        run = await get_run(session, free_edge.url, cid, 0, 8, head)
        after = await request(session, "GET", run_url(free_edge.url, cid, 0, 8))
    port = origin.url.rsplit(":", 1)[1]
    why = f"origin 127.0.0.1:{port} closed the connection before the body's end"
    assert problem(after, 502, "origin_truncated").startswith(why)
    assert after[2]["Atlas-Content-State"] == "failed"
    if run.status != 200:  # the failure was known before the run was asked
        assert problem((run.status, run.problem, run.headers), 502, "origin_truncated")
        return
    assert run.trailer is not None, run.problem
    assert run.trailer.reason == RunEnd.CONTENT_FAILED
    assert run.trailer.detail.startswith(f"502 origin_truncated: {why}"), run.trailer.detail
    assert run.trailer.frames <= 4 and run.data == pattern(0, run.trailer.frames * CHUNK)


async def test_a_run_ends_not_ready_at_a_late_chunk_and_refunds_the_rest(
    tmp_path: Path, origin: Running, ledger: Running
) -> None:
    """A run over a live fetch waits ``--chunk-wait`` for each chunk still arriving; past it
    the run ends ``NOT_READY`` after the frames it had, and what the rest was paid ahead
    stays the payer's credit. The origin sends 16 KiB every 0.2 s: a chunk every 3.2 s."""
    edge = start_edge(tmp_path / "edge", ledger.url, "--free-mib", "0", "--chunk-wait", "0.5")
    try:
        async with aiohttp.ClientSession() as session:
            fetched = await fetch(session, edge.url, f"{origin.url}/slow/{3 * CHUNK}?delay=0.2")
            head, cid = fetched.head, fetched.info["content_id"]
            await _held(session, edge.url, cid, 1)  # chunk 0 (about 3.2 s); chunk 1 is not
            price = await _chunk_price(session, edge.url, cid)
            channel = await open_channel(session, ledger.url, edge.url)
            paid = {"Atlas-Voucher": voucher_header(channel, 3 * price)}
            run = await get_run(session, edge.url, cid, 0, 3, head, paid)
            described = await _described(session, edge.url, cid)
        assert run.status == 200, run.problem
        assert "Content-Length" not in run.headers  # a live fetch's run is streamed
        assert [f.index for f in run.frames] == [0] and run.data == pattern(0, CHUNK)
        assert described["seal"] is None  # still arriving: the run did not wait for it all
        assert run.trailer is not None
        assert (run.trailer.reason, run.trailer.frames, run.trailer.charged) == (
            RunEnd.NOT_READY, 1, price,
        )  # fmt: skip
        assert run.trailer.detail == "chunk 1 has not arrived yet"
        # Three chunks paid ahead, one charged: two are the payer's credit, on the books.
        assert await _books(tmp_path / "edge", channel.terms.channel_id) == (3 * price, price)
    finally:
        edge.stop()


async def _described(session: aiohttp.ClientSession, edge: str, cid: str) -> dict[str, Any]:
    async with session.get(f"{edge}/v1/content/{cid}") as r:
        assert r.status == 200
        described: dict[str, Any] = await r.json()
    return described


async def _held(session: aiohttp.ClientSession, edge: str, cid: str, chunks: int) -> None:
    """Once the edge holds ``chunks`` chunks of a content still arriving (within 30 s)."""
    async with asyncio.timeout(30):
        while int((await _described(session, edge, cid))["chunks_available"]) < chunks:  # noqa: ASYNC110 (the edge is another process)
            await asyncio.sleep(0.05)
