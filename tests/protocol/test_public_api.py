"""The public API of ``requester.protocol`` is exactly this list: growing it is a decision."""

from __future__ import annotations

import requester.protocol as protocol

EXPECTED_ALL = [
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


def test_all_is_exactly_the_expected_list() -> None:
    assert protocol.__all__ == EXPECTED_ALL


def test_all_is_sorted_and_unique() -> None:
    assert len(set(protocol.__all__)) == len(protocol.__all__)
    constants = [n for n in protocol.__all__ if n.isupper()]
    others = [n for n in protocol.__all__ if not n.isupper()]
    assert protocol.__all__ == constants + others
    assert constants == sorted(constants)
    assert others == sorted(others)


def test_every_name_exists() -> None:
    for name in EXPECTED_ALL:
        assert hasattr(protocol, name), name
        assert getattr(protocol, name) is not None, name


def test_star_import_gives_exactly_the_list() -> None:
    namespace: dict[str, object] = {}
    exec("from requester.protocol import *", namespace)
    namespace.pop("__builtins__")
    assert sorted(namespace) == sorted(EXPECTED_ALL)


def test_names_come_from_the_protocol_package() -> None:
    """Re-exports are the protocol's own objects, not third-party ones."""
    for name in EXPECTED_ALL:
        value = getattr(protocol, name)
        module = getattr(value, "__module__", None)
        if isinstance(value, type) or callable(value):
            assert module is not None
            assert module.startswith("requester.protocol"), (name, module)
