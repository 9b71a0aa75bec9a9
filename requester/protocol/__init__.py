"""The Atlas wire protocol: pure data and pure functions, no I/O.

Everything that crosses the network between requesters, edges and ledgers is
defined here once: manifests and chunk statements (what content is), quotes
(what it costs), vouchers (how it is paid) and the channel state machines that
decide when to pay and when to serve. Nothing in this package reads a socket,
a file or a clock; callers pass ``now`` in and perform the returned actions.
The spec is ``docs/protocol.md``.
"""

from requester.protocol.assets import (
    ASSETS,
    BTT,
    BTT_LEGACY,
    BTT_LOCAL,
    LOCAL_CHAIN_ID,
    TRON_MAINNET_CHAIN_ID,
    Asset,
    AssetCode,
    asset_by_code,
    format_amount,
    parse_amount,
)
from requester.protocol.channel import (
    SETTLE_MARGIN,
    Action,
    ChannelStatus,
    ChannelTerms,
    PayeeChannel,
    PayerChannel,
    PersistVoucher,
    Reclaim,
    Redeem,
    SendVoucher,
    Serve,
)
from requester.protocol.chunking import ContentPublisher, ContentVerifier, SignedChunk
from requester.protocol.codec import b64url_decode, b64url_encode
from requester.protocol.credit import CREDIT_HEADER, CreditGuard, CreditSpend, check_credit_spend
from requester.protocol.errors import (
    ChannelClosed,
    ChannelExpired,
    Conflict,
    CreditNotPayer,
    CreditProofRequired,
    CreditSpendExpired,
    CreditSpendReplayed,
    DepositExceeded,
    InvalidSignature,
    MalformedMessage,
    PaymentRequired,
    ProtocolError,
    QuoteExpired,
    StaleVoucher,
    Underpaid,
    WrongBinding,
)
from requester.protocol.identity import NodeId, NodeKey, PayerKey, TronAddress, recover_signer
from requester.protocol.ledger_ops import (
    LedgerOp,
    OpenChannel,
    ReclaimChannel,
    SignedOp,
    TopUpChannel,
    sign_op,
)
from requester.protocol.manifest import (
    DEFAULT_CHUNK_SIZE,
    UNKNOWN_SIZE,
    ChunkStatement,
    ManifestHead,
    Seal,
    chunk_list_digest,
)
from requester.protocol.payment_domain import LOCAL_LEDGER_CONTRACT, PaymentDomain
from requester.protocol.provider_record import ProviderRecord
from requester.protocol.quote import ANY_CONTENT, Quote
from requester.protocol.source import Source, TorrentSource, UrlSource
from requester.protocol.voucher import VOUCHER_HEADER, Voucher, asset_id, channel_id

__all__ = [
    "ANY_CONTENT",
    "ASSETS",
    "BTT",
    "BTT_LEGACY",
    "BTT_LOCAL",
    "CREDIT_HEADER",
    "DEFAULT_CHUNK_SIZE",
    "LOCAL_CHAIN_ID",
    "LOCAL_LEDGER_CONTRACT",
    "SETTLE_MARGIN",
    "TRON_MAINNET_CHAIN_ID",
    "UNKNOWN_SIZE",
    "VOUCHER_HEADER",
    "Action",
    "Asset",
    "AssetCode",
    "ChannelClosed",
    "ChannelExpired",
    "ChannelStatus",
    "ChannelTerms",
    "ChunkStatement",
    "Conflict",
    "ContentPublisher",
    "ContentVerifier",
    "CreditGuard",
    "CreditNotPayer",
    "CreditProofRequired",
    "CreditSpend",
    "CreditSpendExpired",
    "CreditSpendReplayed",
    "DepositExceeded",
    "InvalidSignature",
    "LedgerOp",
    "MalformedMessage",
    "ManifestHead",
    "NodeId",
    "NodeKey",
    "OpenChannel",
    "PayeeChannel",
    "PayerChannel",
    "PayerKey",
    "PaymentDomain",
    "PaymentRequired",
    "PersistVoucher",
    "ProtocolError",
    "ProviderRecord",
    "Quote",
    "QuoteExpired",
    "Reclaim",
    "ReclaimChannel",
    "Redeem",
    "Seal",
    "SendVoucher",
    "Serve",
    "SignedChunk",
    "SignedOp",
    "Source",
    "StaleVoucher",
    "TopUpChannel",
    "TorrentSource",
    "TronAddress",
    "Underpaid",
    "UrlSource",
    "Voucher",
    "WrongBinding",
    "asset_by_code",
    "asset_id",
    "b64url_decode",
    "b64url_encode",
    "channel_id",
    "check_credit_spend",
    "chunk_list_digest",
    "format_amount",
    "parse_amount",
    "recover_signer",
    "sign_op",
]
