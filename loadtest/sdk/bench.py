"""End-to-end benchmark of the requester (``atlas fetch``), run by ``make bench``.

A ledger, nginx (the origin and the reference), a tracker and three paid edges, all
children on 127.0.0.1: ``atlas fetch`` of a new and of a cached URL from 1, 2 and 3 edges
against curl from nginx (fetch, with the scaling table), and the peak RSS of ``atlas
fetch`` for a big file against a 1 MiB one (rss). loadtest/README.md lists the rows.
Needs nginx and curl (``--install-deps``). Usage::

    .venv/bin/python -m loadtest run sdk [--quick] [--reps N] [--json PATH] [--install-deps]
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from loadtest.harness.bench_main import Bench, Run, bench_main, client_session
from loadtest.harness.procfs import RSS_POLL
from loadtest.harness.rows import GB, KIB, Row, make_row, size_text
from loadtest.sdk.fetch import bench_fetch
from loadtest.sdk.network import EDGES, FULL, QUICK, Config, Net, build_net


async def bench_rss(net: Net, run: Run[Config]) -> list[Row]:
    """Peak RSS of ``atlas fetch`` for the big file, and for a small one."""
    cfg, loop = net.cfg, asyncio.get_running_loop()
    big: list[float] = []
    small: list[float] = []
    rates: list[float] = []
    for rep in range(cfg.rss_reps):
        for name in ("big.bin", "small.bin") if rep % 2 == 0 else ("small.bin", "big.bin"):
            url = f"{net.nginx.url}/{name}?rss={rep}"
            got = await loop.run_in_executor(None, net.atlas_fetch, url, EDGES, name)
            (big if name == "big.bin" else small).append(got.peak_rss_kib / KIB)
            if name == "big.bin":
                rates.append(cfg.rss_size / got.seconds / GB)
    text = size_text(cfg.rss_size)
    run.notes.append(
        f"rss: atlas fetch of {text} from 3 edges, first fetch (origin pull included); peak = "
        f"max of VmHWM and VmRSS polled every {RSS_POLL * 1000:.0f} ms; per rep MiB: "
        f"{', '.join(f'{b:.1f}' for b in big)}; {text} at "
        f"{', '.join(f'{r:.3f}' for r in rates)} GB/s wall"
    )
    run.checks["rss"] = {"bytes": cfg.rss_size}
    return [
        make_row("fetch_peak_rss", f"atlas fetch {text}: peak RSS of the process", "MiB", big,
                 f"the same command fetching {size_text(cfg.rss_small)} (fixed cost)", small,
                 "< 100 MiB", lambda _m, _r: max(big) < 100)
    ]  # fmt: skip


async def measure(run: Run[Config]) -> None:
    async with client_session() as session:
        started = time.perf_counter()
        net = await build_net(run.cfg, run.workdir, run.procs, session)
        run.notes.append(
            f"setup: ledger, nginx, a tracker edge and {EDGES} paid edges (--free-mib 0, "
            f"--tracker), funds and open channels: {time.perf_counter() - started:.1f} s"
        )
        await run.parts(
            {"fetch": lambda: bench_fetch(net, run), "rss": lambda: bench_rss(net, run)}
        )


SPEC = Bench(
    "sdk", "Atlas requester benchmark (python -m loadtest run sdk)", __doc__, FULL, QUICK,
    lambda cfg: f"medians of {cfg.reps} (fetch), {cfg.rss_reps} (rss) repetitions; "
    "ratio = median / reference median", ("fetch", "rss"),
    reps_help="repetitions of the fetch runs", tools=("nginx", "curl"),
    libs=("aiohttp", "zstandard"),
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    return bench_main(SPEC, measure, argv)


if __name__ == "__main__":
    raise SystemExit(main())
