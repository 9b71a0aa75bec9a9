"""What a request for one chunk can fail with, and the words for a provider that wants payment.

Split from :mod:`requester.chunk_client` (which raises them); the downloader, the edge's
replica pulls and the crash tests' payers tell these apart to decide whether to drop a
provider, ask it again later, or end the download.
"""

from __future__ import annotations

from requester.errors import SdkError
from requester.protocol import ProtocolError, Quote, b64url_decode, format_amount
from requester.protocol.quote import QUOTE_SIZE
from requester.provider_answer import json_problem, printable

__all__ = [
    "CONTENT_STATE_HEADER", "ChunkUnavailable", "ContentFailed", "PaymentRefused",
    "ProviderFault", "ProviderUnreachable", "wants_payment",
]  # fmt: skip

CONTENT_STATE_HEADER = "Atlas-Content-State"
"""``failed`` on an edge's problem answer for content whose fetch ended in an error."""


class ProviderFault(SdkError):
    """A provider misbehaved or failed; the download drops it and goes elsewhere."""

    status = 502
    code = "provider_fault"

    def __init__(self, provider: str, reason: str, evidence: dict[str, str] | None = None) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider, self.reason, self.evidence = provider, reason, evidence or {}


class PaymentRefused(ProviderFault):
    """The provider serves nothing more unpaid (an edge without a market, past its free
    allowance) and this download cannot or will not pay it: it is dropped, no channel opened."""


class ContentFailed(ProviderFault):
    """The provider says the content itself failed (its origin broke off the body, sent a
    bomb...): no chunk of it will come from there. Drop the provider; the download ends
    only on the word of the edge the content was asked from (see the downloader)."""

    def __init__(self, provider: str, status: int, body: bytes) -> None:
        problem = json_problem(body)
        if problem is not None and "detail" in problem:
            code, detail = problem["type"].rsplit("/", 1)[-1], str(problem["detail"])
        else:
            code, detail = "content_failed", body[:200].decode("utf-8", "replace")
        code, detail = printable(code)[:60], printable(detail)  # shown on terminals, pages
        super().__init__(provider, f"the content failed: {status} {code}: {detail[:300]}")
        self.status, self.code, self.detail = status, code, detail[:300]


class ChunkUnavailable(SdkError):
    """The provider cannot serve this chunk now (not ready, past the end): retry or go elsewhere.
    ``status`` is the provider's (404, 416, 429, 503)."""

    status = 503
    code = "chunk_unavailable"

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status


class ProviderUnreachable(ProviderFault):
    """The provider's connection was refused or reset (it may be restarting). The
    downloader catches it first and backs off and asks again
    (:mod:`requester.provider_backoff`); any other caller sees a provider failure, as
    before it was told apart. It never marks the provider as untrusted."""

    code = "provider_unreachable"

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(provider, reason)


def wants_payment(answer: dict[str, str], why: str, what: str = "past its free allowance") -> str:
    """Why a provider that wants payment is dropped, with its price if its quote decodes."""
    asked = ""
    try:
        quote = Quote.decode(b64url_decode(answer.get("Atlas-Quote", ""), QUOTE_SIZE, "quote"))
        asked = f" ({format_amount(quote.price_per_mib, quote.asset)}/MiB)"
    except ProtocolError:
        pass
    return f"wants payment{asked} {what}, and {why}"
