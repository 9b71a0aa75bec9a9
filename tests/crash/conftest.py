"""Fixtures of the crash matrix: an origin per module, a seeded random source per test.

The ``crash`` marker selects the matrix alone: ``pytest -m crash -n auto``.
"""

from __future__ import annotations

import os
import random
import secrets

import pytest

SEED_ENV = "ATLAS_CRASH_SEED"
"""Set to replay a run: every test draws its kill counts from this seed."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "crash: the kill -9 crash matrix (tests/crash)")


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """Kill timings for this test; the seed is printed, so a failing run can be replayed."""
    seed = int(os.environ.get(SEED_ENV) or secrets.randbits(32))
    print(f"{SEED_ENV}={seed} ({request.node.nodeid})")
    return random.Random(seed)
