"""Discovery through the DHT at 16 edges, each on its own host (issue 17's load test).

A namespace network (loadtest/harness/netns.py: root only) holds the ledger, 16 edges in
a private DHT (edge 1 the others' bootstrap node) and one requester, the probe
(loadtest/dht/probe.py), which lists edges through the rendezvous and reads their
adverts in a loop for the whole run. Measured:

- how soon a requester finds a new edge: more edges start one at a time, each timed from
  its ready line to the probe listing it, and to the probe verifying its advert;
- lookups a second: the probe's rendezvous lookups and advert lookups (one per edge
  listed) over a window with nothing else happening;
- DHT traffic per edge per hour: the probe stopped, every host idle for a window (2
  minutes), the UDP bytes in and out of each edge's link times 3600 / window. An edge
  without torrents sends no UDP but its DHT's; the bytes are counted by the kernel, as
  frames with their headers, in an htb class that a u32 filter sends UDP to, on both ends
  of each host's veth (:meth:`Network.count_udp`). Its link's total bytes
  (/proc/net/dev) and TCP segments (the edge's ledger calls) are reported beside them;
- the resident memory of each edge.

Not in ``make bench`` (it runs about 5 minutes): ``python -m loadtest run dht`` or
``make dht-net``; ``--quick`` is a 4-edge smoke run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.harness.bench_main import Bench, Option, Run
from loadtest.harness.children import ATLAS, BenchError
from loadtest.harness.netns import Network, sweep_stale, unavailable
from loadtest.harness.procfs import proc_status
from loadtest.harness.rows import KIB, make_row

REQUESTER, LEDGER = 200, 201
FOUND_WITHIN = 10.0
"""The issue's limit for finding a provider (tests/dht), and the rows' goal here."""
SETTLE_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class Config:
    mode: str
    edges: int  # edges in the network before the new ones
    joins: int  # new edges, started one at a time and timed
    rate_seconds: int  # the lookup-rate window
    traffic_seconds: int  # the idle window the traffic is extrapolated from
    windows: int  # idle windows one after the other; the rows use the last (the oldest edges)


class Watch:
    """What the probe printed so far (its log: one JSON object a line)."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith('{"event"'):
                found.append(json.loads(line))
        return found

    def first(self, kind: str, url: str) -> float | None:
        return next((e["t"] for e in self.events() if e["event"] == kind and e["url"] == url),
                    None)  # fmt: skip

    async def until(self, kind: str, urls: set[str], seconds: float) -> dict[str, float]:
        """When each of ``urls`` was first ``kind`` (listed, advert); BenchError past
        ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            seen = {e["url"]: e["t"] for e in reversed(self.events()) if e["event"] == kind}
            if urls <= seen.keys():
                return {url: seen[url] for url in urls}
            if time.monotonic() > deadline:
                raise BenchError(f"the probe saw no {kind} of {sorted(urls - seen.keys())}")
            await asyncio.sleep(0.05)


def edge_argv(run: Run[Config], net: Network, host: int, ledger: str, boot: str) -> list[str]:
    return net.argv(host, [
        ATLAS, "edge", "serve", "--host", net.address(host), "--port", "0", "--data-dir",
        str(run.workdir / f"edge{host}"), "--ledger", ledger, "--no-tunnel", "--dht",
        "--dht-bootstrap", boot, "--dht-allow-private",
    ])  # fmt: skip


async def measure(run: Run[Config]) -> None:
    reason = unavailable()
    if reason is not None:
        raise BenchError(f"no namespace network: {reason}")
    sweep_stale()
    cfg = run.cfg
    net = Network([*range(1, cfg.edges + cfg.joins + 1), REQUESTER, LEDGER])
    try:
        net.build()
        for host in range(1, cfg.edges + cfg.joins + 1):
            if (error := net.count_udp(host)) is not None:
                raise BenchError(f"cannot count UDP bytes apart: {error}")
        await network_run(run, net)
    finally:
        run.procs.close()
        net.remove()


async def network_run(run: Run[Config], net: Network) -> None:
    cfg, procs = run.cfg, run.procs
    ledger = procs.start("ledger", net.argv(LEDGER, [
        ATLAS, "ledger", "serve", "--host", net.address(LEDGER), "--port", "0",
        "--data-dir", str(run.workdir / "ledger"), "--faucet",
    ])).url  # fmt: skip
    edges = [procs.start("edge1", edge_argv(run, net, 1, ledger, ""))]
    boot = str(edges[0].ready["dht"])
    for host in range(2, cfg.edges + 1):
        edges.append(procs.start(f"edge{host}", edge_argv(run, net, host, ledger, boot)))
    ready = time.monotonic()
    probe = procs.start("probe", net.argv(REQUESTER, [
        sys.executable, "-m", "loadtest.dht.probe", "watch", boot, "86400",
    ]))  # fmt: skip
    watch = Watch(run.workdir / "probe.log")
    seen = await watch.until("advert", {e.url for e in edges}, SETTLE_TIMEOUT)
    settled = max(seen.values()) - ready
    run.head.append(f"network:  {cfg.edges} edges on 10.77.0.1-{cfg.edges}, requester on "
                    f"10.77.0.{REQUESTER}, ledger on 10.77.0.{LEDGER}; every advert verified "
                    f"{settled:.1f} s after the last edge was ready")  # fmt: skip
    rates = await lookup_rates(run, net, watch)
    joins: list[tuple[float, float]] = []
    for host in range(cfg.edges + 1, cfg.edges + cfg.joins + 1):
        edge = procs.start(f"edge{host}", edge_argv(run, net, host, ledger, boot))
        at = time.monotonic()
        edges.append(edge)
        found = (await watch.until("advert", {edge.url}, 3 * FOUND_WITHIN))[edge.url]
        joins.append(((watch.first("listed", edge.url) or found) - at, found - at))
    procs.stop(probe)
    rss = [proc_status(e.pid)["VmRSS"] / KIB for e in edges]
    hosts, windows = range(1, len(edges) + 1), []
    for _ in range(cfg.windows):
        age = time.monotonic() - ready
        windows.append(await idle_traffic(net, hosts, cfg.traffic_seconds))
        kib = statistics.median(hour_kib(cfg, t) for t in windows[-1].values())
        run.head.append(f"idle:     {cfg.traffic_seconds} s from {age:.0f} s after the first "
                        f"{cfg.edges} edges were up: DHT {kib:,.0f} KiB/h (median)")  # fmt: skip
    rows(run, joins, rates, windows[-1], rss)


def hour_kib(cfg: Config, traffic: tuple[int, ...]) -> float:
    """An edge's UDP bytes in and out of a window, per hour, in KiB."""
    return (traffic[2] + traffic[3]) * 3600 / cfg.traffic_seconds / KIB


async def lookup_rates(run: Run[Config], net: Network, watch: Watch) -> tuple[float, float]:
    """Rendezvous and advert lookups a second of the probe over ``rate_seconds``; the head
    says how many rounds, the slowest, and what the requester's UDP receive buffer dropped."""
    started, dropped = time.monotonic(), net.snmp(REQUESTER)["Udp.RcvbufErrors"]
    await asyncio.sleep(run.cfg.rate_seconds)
    dropped = net.snmp(REQUESTER)["Udp.RcvbufErrors"] - dropped
    rounds = [e for e in watch.events() if e["event"] == "round" and e["t"] >= started]
    if len(rounds) < 2:
        raise BenchError(f"the probe finished {len(rounds)} lookup rounds in the window")
    span = rounds[-1]["t"] - rounds[0]["t"]
    slowest = max(b["t"] - a["t"] for a, b in itertools.pairwise(rounds))
    run.head.append(f"lookups:  {len(rounds)} rounds in {run.cfg.rate_seconds} s, the slowest "
                    f"{slowest:.2f} s; datagrams the requester's full UDP receive buffer "
                    f"dropped: {dropped}")  # fmt: skip
    run.checks["dht_lookups"] = {"rounds": len(rounds), "slowest_round_s": slowest,
                                 "requester_rcvbuf_drops": dropped}  # fmt: skip
    return (len(rounds) - 1) / span, sum(e["asked"] for e in rounds[1:]) / span


async def idle_traffic(net: Network, hosts: Iterable[int], seconds: float
                       ) -> dict[int, tuple[int, ...]]:  # fmt: skip
    """Per edge host over ``seconds`` of nothing but the edges themselves: bytes received and
    sent on its link, UDP bytes received and sent, TCP segments in and out."""

    def counters() -> dict[int, tuple[int, ...]]:
        links, out = net.traffic(), dict[int, tuple[int, ...]]()
        for host in hosts:
            snmp = net.snmp(host)
            out[host] = (*links[host], *net.udp_traffic(host), snmp["Tcp.InSegs"],
                         snmp["Tcp.OutSegs"])  # fmt: skip
        return out

    before = counters()
    await asyncio.sleep(seconds)
    after = counters()
    return {h: tuple(a - b for a, b in zip(after[h], before[h], strict=True)) for h in after}


def rows(run: Run[Config], joins: list[tuple[float, float]], rates: tuple[float, float],
         traffic: dict[int, tuple[int, ...]], rss: list[float]) -> None:  # fmt: skip
    cfg, n = run.cfg, run.cfg.edges
    limit = f"the issue's limit, {FOUND_WITHIN:g} s"

    def within(median: float, _: float) -> bool:
        return median <= FOUND_WITHIN

    def figure(id_: str, operation: str, unit: str, samples: list[float]) -> None:
        median = statistics.median(samples)
        run.rows.append(make_row(id_, operation, unit, samples, "none (a figure)", [median]))

    run.rows += [
        make_row("dht_listed", f"a new edge listed by the rendezvous ({n} edges)", "s",
                 [j[0] for j in joins], limit, [FOUND_WITHIN], "<= 10 s", within),
        make_row("dht_advert_found", f"a new edge's advert verified by a requester ({n} edges)",
                 "s", [j[1] for j in joins], limit, [FOUND_WITHIN], "<= 10 s", within),
    ]  # fmt: skip
    lookups = "lookups a second, one requester"
    figure("dht_rendezvous_rate", f"rendezvous {lookups}", "lookups/s", [rates[0]])
    figure("dht_advert_rate", f"advert {lookups}", "lookups/s", [rates[1]])
    per_hour = [hour_kib(cfg, t) for t in traffic.values()]
    figure("dht_traffic_hour", "DHT traffic of an idle edge, in + out", "KiB/h", per_hour)
    figure("dht_edge_rss", "resident memory of one DHT edge", "MiB", rss)
    run.sections["new edges (s from its ready line: listed, advert verified)"] = [
        f"edge {n + i + 1}: {listed:.2f}, {found:.2f}" for i, (listed, found) in enumerate(joins)
    ]
    run.sections[f"each edge idle for {cfg.traffic_seconds} s (bytes in / out: UDP, the "
                 "link in all; TCP segments in / out)"] = [
        f"edge {h}: UDP {ui:,} / {uo:,}; link {rx:,} / {tx:,}; TCP {ti} / {to}"
        for h, (rx, tx, ui, uo, ti, to) in traffic.items()
    ]  # fmt: skip
    run.checks["dht"] = {"joins": joins, "rendezvous_per_s": rates[0], "rss_mib": rss,
                         "adverts_per_s": rates[1],
                         "traffic": {str(h): t for h, t in traffic.items()}}  # fmt: skip


SPEC = Bench(
    "dht", "Atlas DHT discovery load test (python -m loadtest run dht)", __doc__,
    Config("full", 16, 5, 30, 120, 2), Config("quick", 4, 1, 3, 10, 1),
    lambda cfg: f"{cfg.edges} edges, {cfg.joins} joining, lookups over {cfg.rate_seconds} s, "
    f"traffic over {cfg.windows} x {cfg.traffic_seconds} s idle", measure, reps_fields=("joins",),
    reps_help="new edges timed (default 5)",
    options=(Option("--edges", "edges", "edges before the new ones (default 16)", 2, 150),
             Option("--traffic-seconds", "traffic_seconds", "the idle window (default 120)", 5),
             Option("--windows", "windows", "idle windows in a row (default 2)", 1, 30)),
)  # fmt: skip
