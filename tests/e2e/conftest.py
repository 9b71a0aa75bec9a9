"""End-to-end tests share the SDK tests' real processes: origin, ledger, paid edges."""

from tests.sdk.conftest import edges, ledger, origin

__all__ = ["edges", "ledger", "origin"]
