"""Ledger refusals: the ledger's own codes and statuses (a :class:`ServiceRefusal`)."""

from __future__ import annotations

from requester.errors import ServiceRefusal


class LedgerRefusal(ServiceRefusal):
    """A call the ledger refuses; nothing was changed. Each carries its own status and code
    (``402 insufficient_funds``, ``404 not_found``, ``409`` conflicts, ``400 bad_request``)."""

    code = "ledger_refusal"

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def insufficient_funds(have: str, need: str, missing: str) -> LedgerRefusal:
    return LedgerRefusal(
        402, "insufficient_funds", f"balance is {have}, the call needs {need} ({missing} missing)"
    )


def not_found(what: str) -> LedgerRefusal:
    return LedgerRefusal(404, "not_found", f"{what} not found")


def conflict(code: str, message: str) -> LedgerRefusal:
    return LedgerRefusal(409, code, message)


def bad_request(message: str) -> LedgerRefusal:
    return LedgerRefusal(400, "bad_request", message)
