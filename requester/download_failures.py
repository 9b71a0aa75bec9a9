"""Why a download stopped before its end: no provider left, payment needed and not
possible, or the content failed at the origin edge.

Split from :mod:`requester.downloader`, which raises them; the SDK, the CLI and the
proxy answer each with its own status and problem code.
"""

from __future__ import annotations

import re

from requester.chunk_faults import ContentFailed
from requester.errors import ORIGIN_TITLES, SdkError


class NoProvidersLeft(SdkError):
    """Every provider failed or was dropped before the download completed."""

    status = 504
    code = "no_providers"
    title = "No provider could deliver this page"


class PaymentNeeded(NoProvidersLeft):
    """Every provider left serves nothing more unpaid (edges without a market, past their
    free allowance), and this download cannot pay: no wallet, ``--max-price 0``, or a
    wallet too poor to open a channel (none was opened)."""

    status = 402
    code = "payment_needed"
    title = "The providers want payment, and this wallet cannot pay"


class ContentFailedAtOrigin(NoProvidersLeft):
    """The edge the content was asked from (the first provider: it signed the head and
    seals it) says its fetch failed: no chunk past the failure exists anywhere."""

    status = 502
    code = "content_failed"
    title = "The site's response failed at the Atlas edge"

    def __init__(self, failed: ContentFailed) -> None:
        super().__init__(f"{failed.provider}: {failed.reason}")
        self.edge = failed.provider
        self.status = failed.status if 500 <= failed.status < 600 else 502
        if re.fullmatch(r"[a-z0-9_]{1,60}", failed.code):
            self.code = failed.code
        self.detail = failed.detail
        """The edge's problem, as it said it (``502 origin_truncated``, its detail)."""
        self.title = ORIGIN_TITLES.get(self.code, self.title)
        self.message = f"{self.detail or self.code}; reported by the Atlas edge {self.edge}"
