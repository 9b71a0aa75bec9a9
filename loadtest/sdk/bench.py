"""End-to-end benchmark of the requester (``atlas fetch``), run by ``make bench``.

Real processes on 127.0.0.1, all children of this one: a ledger with faucet, nginx (the
origin, and the reference), a tracker and three paid edges (``--free-mib 0``). Each
measurement is compared with a reference taken in the same run:

1. **fetch**: a 100 MiB paid, verified download with ``atlas fetch URL -o FILE --json``
   (wall time of the whole command) from three edges, against ``curl -o FILE`` reading the
   same file from nginx. Measured twice: *first* (a new URL, so the origin edge pulls the
   body from nginx while the client downloads and the other two edges replicate from it:
   origin fetch included) and *cached* (a URL the edges hold: an nginx ``Cache-Control:
   max-age`` response, a cache HIT at the origin edge, full replicas at the others).
2. **scaling**: the cached download with ``--edge`` lists of 1, 2 and 3 edges, with the
   chunks each provider served (from the ``--json`` summary).
3. **rss**: peak RSS of the ``atlas fetch`` process (``/proc/PID/status`` VmHWM and VmRSS
   polled every 10 ms) downloading 1 GiB; reference: the same command downloading 1 MiB.

Medians of several repetitions (in rotating order); ``ratio`` = median / reference
median. Usage::

    .venv/bin/python -m loadtest run sdk [--quick] [--reps N] [--json PATH] [--install-deps]

Needs ``nginx`` and ``curl`` (Debian packages of those names); ``--install-deps``
installs them with apt-get when missing.
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

PARTS = ("fetch", "rss")


async def bench_rss(net: Net) -> list[Row]:
    """Part 3: peak RSS of ``atlas fetch`` for the big file, and for a small one."""
    cfg, loop = net.cfg, asyncio.get_running_loop()
    big: list[float] = []
    small: list[float] = []
    rates: list[float] = []
    for rep in range(cfg.rss_reps):
        for name in ("big.bin", "small.bin") if rep % 2 == 0 else ("small.bin", "big.bin"):
            url = f"{net.nginx.url}/{name}?rss={rep}"
            run = await loop.run_in_executor(None, net.atlas_fetch, url, EDGES, name)
            if name == "small.bin":
                small.append(run.peak_rss_kib / KIB)
                continue
            big.append(run.peak_rss_kib / KIB)
            rates.append(cfg.rss_size / run.seconds / GB)
            providers = run.summary["providers"]
            net.checks.setdefault("rss_chunks_per_provider", []).append(
                {net.names().get(u, u): p["chunks"] for u, p in providers.items()}
            )
    text = size_text(cfg.rss_size)
    net.notes.append(
        f"rss: atlas fetch of {text} from 3 edges, first fetch (origin pull included); peak = "
        f"max of VmHWM and VmRSS polled every {RSS_POLL * 1000:.0f} ms; per rep MiB: "
        f"{', '.join(f'{b:.1f}' for b in big)}; {text} at "
        f"{', '.join(f'{r:.3f}' for r in rates)} GB/s wall"
    )
    net.checks["rss"] = {"bytes": cfg.rss_size, "peak_mib": big, "reference_peak_mib": small}
    return [
        make_row("fetch_peak_rss", f"atlas fetch {text}: peak RSS of the process", "MiB", big,
                 f"the same command fetching {size_text(cfg.rss_small)} (fixed cost)", small,
                 "< 100 MiB", lambda _m, _r: max(big) < 100)
    ]  # fmt: skip


async def measure(run: Run[Config]) -> None:
    async with client_session() as session:
        started = time.perf_counter()
        net = await build_net(run.cfg, run.workdir, run.procs, session)
        net.notes, net.checks, net.sections = run.notes, run.checks, run.sections
        net.notes.append(
            f"setup: ledger, nginx, a tracker edge and {EDGES} paid edges (--free-mib 0, "
            f"--tracker), funds and open channels: {time.perf_counter() - started:.1f} s"
        )
        await run.parts({"fetch": lambda: bench_fetch(net), "rss": lambda: bench_rss(net)})


SPEC = Bench(
    "sdk", "Atlas requester benchmark (python -m loadtest run sdk)", __doc__, FULL, QUICK,
    lambda cfg: f"medians of {cfg.reps} (fetch), {cfg.rss_reps} (rss) repetitions; "
    "ratio = median / reference median", PARTS, reps_help="repetitions of the fetch runs",
    tools=("nginx", "curl"), libs=("aiohttp", "zstandard"),
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    return bench_main(SPEC, measure, argv)


if __name__ == "__main__":
    raise SystemExit(main())
