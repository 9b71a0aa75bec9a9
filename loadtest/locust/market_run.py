"""``python -m loadtest locust --scenario market``: locust's bidders and free users
(:mod:`.market_users`) against one capacity-limited market edge (issue 16, docs/market.md).

A ledger, the test origin and one edge of 8 MiB/s, 4 slots (1 free), reserve 1 BTT/MiB,
2 s rounds; four bidders (2, 3, 4, 5 BTT/MiB: three paid slots, so 3..5 win at the
clearing price 2 and the 2 loses) and four free users, each from a loopback address of its
own, for ``-t`` (default 30 s). The mechanism's rates: a winner 2 MiB/s paid + 256 KiB/s
free, the loser and each free user 256 KiB/s (the one free slot shared by eight
addresses), 8 MiB/s in all. Prints each user's rate by lane and its answers over the run's
second half (the first round clears meanwhile); exit 1 when a free user was answered
anything but 200 (a 402 most of all) or a user got nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.harness.children import BenchError, Processes, workspace
from loadtest.harness.network import edge_payee, open_payer
from loadtest.harness.rows import KIB, MIB, table
from loadtest.locust.network import Network
from loadtest.market.driver import content
from requester.ledger_client import LedgerClient
from requester.protocol import BTT_LOCAL, PayerKey, format_amount

EDGE = ("--upload-capacity", "8MiB/s", "--slots", "4", "--free-slots", "1", "--reserve", "1",
        "--round-seconds", "2", "--free-mib", "0")  # fmt: skip
BIDS = ("2", "3", "4", "5")
FREE_USERS = 4
USERS_FILE = Path(__file__).with_name("market_users.py")


async def prepare(edge: str, ledger_url: str, origin: str, out: Path,
                  window: tuple[float, float]) -> dict[str, Any]:  # fmt: skip
    """The content at the edge and a funded channel per bidder: what the users read."""
    cid = await content(edge, f"{origin}/bytes/{16 * MIB}")
    bidders = []
    async with aiohttp.ClientSession() as http:
        ledger = LedgerClient(ledger_url, http)
        payee, domain = await edge_payee(http, edge), await ledger.domain()
        for n, bid in enumerate(BIDS, 1):
            channel = await open_payer(ledger, payee, key := PayerKey.generate())
            view = await ledger.channel(channel.terms.channel_id)
            bidders.append({"source": f"127.0.4.{n}", "bid": bid, "secret": key.secret.hex(),
                            "view": view, "chain_id": domain.chain_id,
                            "contract": domain.contract.hex()})  # fmt: skip
    free = [{"source": f"127.0.5.{n}"} for n in range(1, FREE_USERS + 1)]
    return {"edge": edge, "cid": cid, "chunks": 64, "bidders": bidders, "free": free,
            "out": str(out / "market_users.json"), "window": window}  # fmt: skip


def run_market(seconds: int, out: Path) -> int:
    """The run, its reports in ``out``; the exit status."""
    users = len(BIDS) + FREE_USERS
    with workspace("atlas-locust-market-") as workdir:
        procs = Processes(workdir)
        try:
            ledger, origin = procs.ledger(), procs.origin()
            edge = procs.edge("edge", ledger.url, *EDGE)
            window = (seconds / 2, float(seconds))  # measured: the second half
            setup = asyncio.run(prepare(edge.url, ledger.url, origin.url, out, window))
            (path := out / "market_setup.json").write_text(json.dumps(setup), "utf-8")
            net = Network({"ledger": ledger.pid, "edge": edge.pid}, {"ATLAS_LT_MARKET": str(path)})
            run = net.locust(out / "locust", USERS_FILE, ["Bidder", "FreeUser"], users, users,
                             seconds, ["--stop-timeout", "0"])  # fmt: skip
        finally:
            procs.close()
    if not Path(setup["out"]).exists():
        raise BenchError(f"locust wrote no market figures (exit {run.returncode}); see {out}")
    found = json.loads(Path(setup["out"]).read_text("utf-8"))["users"]
    summary = {"seconds": seconds, "edge": EDGE, "users": found, "scenarios": run.scenarios,
               "locust_exit": run.returncode}  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=1), "utf-8")
    return report(found, seconds / 2)


def report(found: list[dict[str, Any]], seconds: float) -> int:
    """One row per user (rate by lane, answers by status), then the two groups' totals."""
    cells, bad = [], []
    for u in sorted(found, key=lambda u: (u["bid"] is None, -float(u["bid"] or 0))):
        paid, free = (u["lanes"].get(lane, 0) / seconds / KIB for lane in ("paid", "free"))
        who = f"bid {u['bid']}" if u["bid"] else "free user"
        answers = ", ".join(f"{s}: {n}" for s, n in sorted(u["statuses"].items()))
        rates = [f"{paid:,.0f}", f"{free:,.0f}", f"{paid + free:,.0f}"]
        cells.append([who, u["source"], *rates, answers])
        if (not u["bid"] and set(u["statuses"]) != {"200"}) or not paid + free:
            bad.append(f"{who} at {u['source']}: answers {u['statuses']}")
    header = ["user", "address", "paid KiB/s", "free KiB/s", "total KiB/s", "answers"]
    print("", *table(header, cells, left=(0, 1, 5)), sep="\n")
    for group, members in (("bidders", [u for u in found if u["bid"]]),
                           ("free users", [u for u in found if not u["bid"]])):  # fmt: skip
        total = sum(sum(u["lanes"].values()) for u in members) / seconds / KIB
        refused = sum(u["statuses"].get("402", 0) for u in members)
        prices = {format_amount(u["clearing"], BTT_LOCAL) for u in members if "clearing" in u}
        price = f", clearing price {', '.join(sorted(prices))}/MiB" if prices else ""
        print(f"{group}: {total:,.0f} KiB/s together, {refused} answers 402{price}")
    for line in bad:
        print(f"FAILED: {line}")
    return 1 if bad or len(found) != len(BIDS) + FREE_USERS else 0
