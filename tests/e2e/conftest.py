"""End-to-end tests share the SDK tests' real processes: the paid edges here, the
origin and ledger from tests/conftest.py."""

from tests.sdk.conftest import edges

__all__ = ["edges"]
