"""``python -m loadtest bench|run NAME|locust|sweep [ARGS]``: the one entry point of the
benchmarks and load test (see ``loadtest/__init__.py``; ``COMMAND --help`` for its arguments)."""

from __future__ import annotations

import importlib
import signal
import sys
from collections.abc import Sequence

import loadtest


def main(argv: Sequence[str]) -> int:
    command, args = (argv[0], list(argv[1:])) if argv else ("", [])
    if command in ("locust", "sweep"):
        from loadtest.locust import cli

        return cli.main(["--sweep", *args] if command == "sweep" else args)
    from loadtest.harness.suite import NAMES, module_of

    if command == "bench":
        module = "loadtest.harness.suite"
    elif command == "run" and args and args[0] in NAMES:
        module, args = module_of(args[0]), args[1:]
    else:
        print(loadtest.__doc__, file=sys.stderr)
        return 0 if command in ("-h", "--help") else 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop its children on SIGTERM
    return int(importlib.import_module(module).main(args))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
