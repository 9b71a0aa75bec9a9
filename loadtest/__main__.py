"""``python -m loadtest bench|run NAME|locust|sweep [ARGS]``: the one entry point of the
benchmarks and load test (see ``loadtest/__init__.py``; ``COMMAND --help`` for its arguments)."""

from __future__ import annotations

import importlib
import signal
import sys
from collections.abc import Sequence

import loadtest

ALONE = ("dht",)
"""Benchmarks run only by name, never by ``bench`` (root only, minutes long)."""


def main(argv: Sequence[str]) -> int:
    command, args = (argv[0], list(argv[1:])) if argv else ("", [])
    if command in ("locust", "sweep"):
        from loadtest.locust import cli

        return cli.main(["--sweep", *args] if command == "sweep" else args)
    from loadtest.harness import suite
    from loadtest.harness.bench_main import bench_main

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop its children on SIGTERM
    if command == "bench":
        return suite.main(args)
    if command == "run" and args and args[0] in (*suite.NAMES, *ALONE):
        return bench_main(importlib.import_module(f"loadtest.{args[0]}.bench").SPEC, args[1:])
    print(loadtest.__doc__, file=sys.stderr)
    return 0 if command in ("-h", "--help") else 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
