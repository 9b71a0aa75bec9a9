"""What can go wrong fetching from an origin, as problems a requester reads (see
:mod:`cdn_edge.content.origin_fetch` for the whole tree, with the SSRF guard's)."""

from __future__ import annotations

from requester.errors import ServiceRefusal

__all__ = [
    "BadOriginEncoding",
    "OriginReset",
    "OriginTimeout",
    "OriginTlsInvalid",
    "OriginTooLarge",
    "OriginTruncated",
    "OriginUnreachable",
    "TooManyRedirects",
]


class OriginUnreachable(ServiceRefusal):
    status = 502
    code = "origin_unreachable"


class OriginTlsInvalid(OriginUnreachable):
    """The origin's TLS certificate does not verify (untrusted issuer, wrong name, expired)."""

    code = "origin_tls_invalid"


class OriginTruncated(OriginUnreachable):
    """The body ended (the connection closed) before its Content-Length or last chunk."""

    code = "origin_truncated"


class OriginReset(OriginUnreachable):
    """The origin reset the connection in the middle of the body."""

    code = "origin_reset"


class OriginTimeout(ServiceRefusal):
    status = 504
    code = "origin_timeout"


class OriginTooLarge(ServiceRefusal):
    status = 502
    code = "origin_too_large"


class TooManyRedirects(ServiceRefusal):
    status = 502
    code = "too_many_redirects"


class BadOriginEncoding(ServiceRefusal):
    status = 502
    code = "bad_content_encoding"
