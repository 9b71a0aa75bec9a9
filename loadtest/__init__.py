"""Atlas's benchmarks and its locust load test: one package, run from the repository root.

    python -m loadtest bench [--quick] [--only NAME ...]   # every benchmark, one table
    python -m loadtest run NAME [--quick] [--json PATH]    # one benchmark (protocol, edge, ...)
    python -m loadtest locust [-u N -t 2m | --smoke]       # locust against atlas up
    python -m loadtest sweep [--sweep-users 5,10,...]       # the saturation sweep

See ``loadtest/README.md`` for what each row measures.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
"""The repository root: a child that runs ``python -m loadtest...`` needs it on its path."""
