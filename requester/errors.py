"""Every Atlas error: one root carrying the HTTP status that fits and a stable code.

Refusals (what a server answers a request with) and the SDK's failures::

    AtlasError                            status code
    ├── Refusal                           400  refusal           a request or message refused
    │   ├── ProtocolError                 400  protocol_error    by the wire protocol's rules
    │   │   ├── MalformedMessage, InvalidSignature, WrongBinding  400   (requester/protocol/
    │   │   ├── PaymentRequired           402  Underpaid, DepositExceeded,       errors.py)
    │   │   │   │                              ChannelExpired, QuoteExpired, CreditNotPayer,
    │   │   │   │                              CreditProofRequired, CreditSpendExpired
    │   │   │   └── SpendLimitReached     402  spend_limit       the requester's own limit
    │   │   │       └── InsufficientFunds      (spend_limit)     the wallet cannot fund a channel
    │   │   └── Conflict                  409  StaleVoucher, ChannelClosed, CreditSpendReplayed
    │   └── ServiceRefusal                400  service_refusal   by an edge or the ledger, for
    │       │                                                    its own reasons
    │       ├── origin   OriginUnreachable 502 (OriginTlsInvalid, OriginTruncated,
    │       │            OriginReset), OriginTimeout 504, OriginTooLarge 502,
    │       │            TooManyRedirects 502, BadOriginEncoding 502
    │       │                                         (cdn_edge/content/origin_errors.py)
    │       ├── address  BadUrl 400, BlockedAddress 403   (cdn_edge/address_policy.py)
    │       ├── content  FetchFailed 502, TorrentsOff 404 not_found
    │       │                                         (cdn_edge/content/, routes_content.py)
    │       ├── torrent  TorrentFileNotFound 404, TorrentTooLarge 413,
    │       │            TorrentUnsupported 422, TorrentUnavailable 503,
    │       │            TorrentTimeout 504, TorrentStorageFull 507
    │       │                                         (cdn_edge/torrent/errors.py)
    │       ├── tunnel   TunnelInUse 409, TunnelClosed 409, UnknownTunnel 404,
    │       │            TooManyTunnels 503, TargetUnreachable 502, InternalError 500
    │       │                                         (cdn_edge/tunnel/)
    │       ├── payment  LedgerUnavailable 503        (cdn_edge/payments.py)
    │       └── ledger   LedgerRefusal (a status and code per refusal), FaucetLimited 429
    │                                                 (cdn_edge/ledger/)
    └── SdkError                          500  sdk_error         the requester SDK could not
        │                                                        do what it was asked
        ├── TorrentListing                300  torrent_listing   a torrent: which file?
        ├── FetchRefused                  400  (the edge's)      an edge refused the fetch
        ├── EdgeUnavailable               502  edge_unreachable  no edge could fetch (or the
        │                                                        origin's problem, as said)
        ├── NoProvidersLeft               504  no_providers
        │   ├── ContentFailedAtOrigin     502  content_failed    the first edge's fetch failed
        │   └── PaymentNeeded             402  payment_needed    they want payment; none possible
        ├── LedgerError                   502  ledger_unavailable   refused or not reached
        │                                                        (the ledger's status kept)
        ├── ProviderFault                 502  provider_fault    one provider failed: go on
        │   ├── ContentFailed                  (the provider's)  it says the content failed
        │   └── PaymentRefused                 (provider_fault)  wants payment we cannot make
        ├── ChunkUnavailable              503  chunk_unavailable not now: retry elsewhere
        ├── NewChannelRefused             402  new_channel_refused  no room for one more
        ├── IssuedElsewhere               409  issued_elsewhere  (and a ValueError)
        ├── KeystoreError                 500  keystore_unusable
        ├── ConfigError                   500  config_invalid
        ├── NetworkSetupError             500  network_setup_failed   (``atlas up``)
        │   └── PortInUse                 409  port_in_use
        └── ChildFailed                   500  child_failed      (``atlas up``)

The edge and the ledger answer a :class:`Refusal` with its problem; an :class:`SdkError`
met there (the edge paying a provider) is their own failure, logged and answered 500. The
proxy answers the SDK's failures that carry a ``title`` as they say, on a page or as JSON.

``status`` and ``code`` are the error's own; an error that relays a peer's answer
(:class:`LedgerError`, :class:`ChunkUnavailable`, :class:`ContentFailed`) keeps the peer's
in them. :meth:`AtlasError.answer` is what a server answers when the error ends a request
it serves: the same, unless the class says otherwise (a ledger's ``404 not_found`` is the
proxy's ``502 ledger_unavailable``). ``message`` is the problem's detail; ``str(exc)`` is
the same unless the class words it for a terminal. ``title`` is set on the failures a
person reads as they are (the proxy's pages); without one a page says the program failed.

:class:`Problem` writes every RFC 9457 body Atlas sends. This module does no I/O:
the sans-IO protocol core imports it. Callers catch by meaning (``except Refusal``,
``except PaymentRequired``), not by where the error was raised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE = "https://atlas.invalid/problems/"


@dataclass(frozen=True)
class Problem:
    """An RFC 9457 problem: what every Atlas refusal says on the wire."""

    status: int
    code: str
    detail: str
    title: str | None = None
    """A person's one-line summary; by default the code, spaced."""

    def document(self) -> dict[str, object]:
        return {
            "type": PROBLEM_TYPE + self.code,
            "title": self.title if self.title is not None else self.code.replace("_", " "),
            "status": self.status,
            "detail": self.detail,
        }

    def json(self) -> str:
        """The document as the text of an ``application/problem+json`` body."""
        return json.dumps(self.document())


class AtlasError(Exception):
    """The root: an error with the HTTP status that fits and a stable code."""

    status: int = 500
    code: str = "atlas_error"
    title: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def answer(self) -> Problem:
        """The problem a server answers with when this error ends a request it serves."""
        return Problem(self.status, self.code, self.message, self.title)

    def problem(self) -> dict[str, object]:
        """An RFC 9457 problem body for this error."""
        return self.answer().document()


class Refusal(AtlasError):
    """A request or message refused: the status and code are what the refusing server
    answers (:class:`ProtocolError` by the wire's rules, :class:`ServiceRefusal` otherwise)."""

    status = 400
    code = "refusal"


class ServiceRefusal(Refusal):
    """An edge or the ledger refuses a request for its own reasons (the origin failed, the
    address is blocked, the ledger is down...): answered like a protocol refusal."""

    status = 400
    code = "service_refusal"


class SdkError(AtlasError):
    """The requester SDK could not do what it was asked (fetch, pay, load its wallet...)."""

    status = 500
    code = "sdk_error"


ORIGIN_TITLES = {
    "origin_tls_invalid": "The site's TLS certificate could not be verified",
    "origin_unreachable": "The site could not be reached",
    "origin_timeout": "The site did not answer in time",
    "origin_too_large": "The site's response is too large",
    "origin_truncated": "The site broke off its response",
    "origin_reset": "The site reset the connection in the middle of its response",
    "too_many_redirects": "The site redirects too many times",
    "bad_content_encoding": "The site sent a corrupt response",
}
"""Edge problems that are the origin's fault (``cdn_edge/content/origin_errors.py``), and
how a person reads them: an SDK failure that relays one says so with its title."""
