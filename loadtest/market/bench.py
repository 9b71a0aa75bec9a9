"""Rates by bid and by lane on one market edge under contention (docs/market.md).

The issue's setting: 8 MiB/s, 8 slots (2 free), a reserve of 1 BTT/MiB, 256 KiB chunks;
ten requesters bidding 1..10 BTT/MiB and two free ones (driver.py), each rate measured
over the run's second half beside what the mechanism gives (``auction.shares``): 7/6
MiB/s for a winner, 1/6 for everyone else, the capacity in all.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadtest.harness.bench_main import Bench, Run
from loadtest.harness.rows import KIB, MIB, Row, make_row
from loadtest.market.driver import Requester, content, drive
from requester.protocol import BTT_LOCAL, format_amount


@dataclass(frozen=True, slots=True)
class Config:
    mode: str
    seconds: float  # the run; rates are measured over its second half


EDGE = ("--upload-capacity", "8MiB/s", "--slots", "8", "--free-slots", "2", "--reserve", "1",
        "--round-seconds", "5", "--free-mib", "0")  # fmt: skip
GROUPS = (  # id, operation, the bids in it ("" = free), the mechanism's rate in KiB/s
    ("market_winner", "a winning bid (5..10 BTT/MiB)", ("5", "6", "7", "8", "9", "10"), 7168 / 6),
    ("market_loser", "a losing bid (1..4 BTT/MiB), free lane", ("1", "2", "3", "4"), 1024 / 6),
    ("market_free", "a free requester, free lane", ("",), 1024 / 6),
)


def row(id_: str, operation: str, got: list[float], reference: str, value: float) -> Row:
    return make_row(id_, operation, "KiB/s", got, reference, [value], "ratio >= 0.90",
                    lambda _, ratio: ratio >= 0.9)  # fmt: skip


async def measure(run: Run[Config]) -> None:
    ledger = run.procs.ledger()
    origin = run.procs.origin()
    edge = run.procs.edge("edge", ledger.url, *EDGE)
    cid = await content(edge.url, f"{origin.url}/bytes/{16 * MIB}")
    who = [Requester(f"127.0.2.{b}", str(b)) for b in range(1, 11)]
    who += [Requester("127.0.2.11"), Requester("127.0.2.12")]
    span = run.cfg.seconds / 2
    await drive(edge.url, ledger.url, cid, 64, who, seconds=run.cfg.seconds, settle=span)
    kib_s = {r.source: r.rate(span) / KIB for r in who}
    for id_, operation, bids, mechanism in GROUPS:
        got = [kib_s[r.source] for r in who if (r.bid or "") in bids]
        run.rows.append(
            row(id_, operation, got, f"the mechanism: {mechanism:.0f} KiB/s", mechanism)
        )
    run.rows.append(row("market_total", "all 12 requesters together", [sum(kib_s.values())],
                        "the capacity, 8 MiB/s", 8192.0))  # fmt: skip
    run.checks["market"] = {"bids": [r.bid or "free" for r in who], "kib_s": list(kib_s.values()),
                            "paid_kib_s": [r.rate(span, "paid") / KIB for r in who],
                            "clearing": format_amount(who[9].clearing, BTT_LOCAL),
                            "statuses": [dict(r.statuses) for r in who]}  # fmt: skip
    run.sections["rate by bid (MiB/s: paid lane + free lane)"] = [
        f"bid {r.bid or 'free':>4}: {r.rate(span) / MIB:.3f} = {r.rate(span, 'paid') / MIB:.3f}"
        f" + {r.rate(span, 'free') / MIB:.3f}; answers {dict(r.statuses)}" for r in who
    ]  # fmt: skip


SPEC = Bench(
    "market", "Atlas market benchmark (python -m loadtest run market)", __doc__,
    Config("full", 60.0), Config("quick", 16.0), lambda cfg: f"{cfg.seconds:g} s run, "
    "rates over its second half; ratio = rate / the mechanism's", measure, reps_fields=(),
)  # fmt: skip
