"""Errors of the Atlas wire protocol.

Every refusal the protocol core makes is a :class:`ProtocolError` that carries
a stable machine-readable ``code`` and the HTTP status that fits, so servers can
turn it into a JSON problem without guessing. It is one branch of the whole tree
(:mod:`requester.errors`, whose root :class:`AtlasError` writes the problem)::

    ProtocolError(Refusal)             (base; never raised itself)
    ├── MalformedMessage        400    bytes that do not decode, or break a limit
    ├── InvalidSignature        400    signature does not verify / wrong signer
    ├── WrongBinding            400    voucher/quote/chunk bound to another party,
    │                                  chain, asset, channel or content
    ├── AdvertExpired           400    node advert past its expiry (or issued ahead)
    ├── PaymentRequired         402    the payer must pay (more, or differently)
    │   ├── Underpaid                  voucher does not cover what is owed
    │   ├── DepositExceeded            voucher above the channel's deposit
    │   ├── ChannelExpired             channel at or past its expiry margin
    │   ├── QuoteExpired               quote outside its validity window
    │   ├── CreditProofRequired        credit named by channel id alone, unsigned
    │   ├── CreditNotPayer             credit spend signed by someone but the payer
    │   └── CreditSpendExpired         credit spend issued too long ago (or ahead)
    └── Conflict                409    state conflict
        ├── StaleVoucher               amount not above the last accepted one
        ├── ChannelClosed              channel already closed
        └── CreditSpendReplayed        credit spend already honoured once

Callers catch by meaning (``except PaymentRequired``), not by where it was raised.
"""

from __future__ import annotations

from requester.errors import Refusal


class ProtocolError(Refusal):
    """Base class: a refusal with an HTTP status and a stable code (``problem()`` from
    :class:`AtlasError` writes its RFC 9457 body)."""

    status: int = 400
    code: str = "protocol_error"


class MalformedMessage(ProtocolError):
    """Input does not decode, has the wrong type/version, or breaks a limit."""

    status = 400
    code = "malformed_message"


class InvalidSignature(ProtocolError):
    """A signature does not verify, or it was made by the wrong key."""

    status = 400
    code = "invalid_signature"


class WrongBinding(ProtocolError):
    """A message is valid but bound to another payee, chain, asset, channel or content."""

    status = 400
    code = "wrong_binding"


class AdvertExpired(ProtocolError):
    """A node advert outside its lifetime: a DHT may keep stale items for hours."""

    status = 400
    code = "advert_expired"


class PaymentRequired(ProtocolError):
    """The payer must pay more, or open a new channel, before being served."""

    status = 402
    code = "payment_required"


class Underpaid(PaymentRequired):
    code = "underpaid"


class DepositExceeded(PaymentRequired):
    code = "deposit_exceeded"


class ChannelExpired(PaymentRequired):
    code = "channel_expired"


class QuoteExpired(PaymentRequired):
    code = "quote_expired"


class CreditProofRequired(PaymentRequired):
    """Channel ids are public: credit is spent only with a spend signed by the payer."""

    code = "credit_proof_required"


class CreditNotPayer(PaymentRequired):
    code = "credit_not_payer"


class CreditSpendExpired(PaymentRequired):
    code = "credit_spend_expired"


class Conflict(ProtocolError):
    """The request conflicts with state already recorded."""

    status = 409
    code = "conflict"


class StaleVoucher(Conflict):
    code = "stale_voucher"


class ChannelClosed(Conflict):
    code = "channel_closed"


class CreditSpendReplayed(Conflict):
    code = "credit_spend_replayed"
