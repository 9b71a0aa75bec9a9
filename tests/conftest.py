"""Shared test factories: fixed keys and a ready channel, so tests stay short and agree."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import pytest
from hypothesis import settings

from requester.protocol import (
    ANY_CONTENT,
    BTT_LOCAL,
    DEFAULT_CHUNK_SIZE,
    LOCAL_CHAIN_ID,
    LOCAL_LEDGER_CONTRACT,
    UNKNOWN_SIZE,
    Asset,
    ChannelTerms,
    ManifestHead,
    NodeKey,
    PayerKey,
    PaymentDomain,
    Quote,
    Source,
    TronAddress,
    UrlSource,
    Voucher,
    channel_id,
)
from tests.processes import Running, start_ledger, start_origin

EDGE_SEED = bytes(range(32))
PAYER_SECRET = bytes([0x11] * 32)
PAYEE_SECRET = bytes([0x22] * 32)
DEPOSIT = 10**18
EXPIRES_AT = 2_000_000_000
NOW = 1_700_000_000

# No per-example deadline: a hypothesis deadline is a timing assert, and on a loaded CI
# machine (or on a first example that imports tronpy, 0.3-0.4 s) it fails correct code.
# HYPOTHESIS_PROFILE=default brings hypothesis's own 200 ms deadline back.
settings.register_profile("atlas", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "atlas"))


@pytest.fixture(scope="module")
def origin() -> Iterator[Running]:
    """The loopback aiohttp origin (tests/origin_server.py), one per test module."""
    running = start_origin()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """An embedded ledger with its faucet, one per test module (a package's own
    conftest may narrow or widen it, as tests/ledger and tests/faults do)."""
    running = start_ledger(tmp_path_factory.mktemp("ledger"))
    yield running
    running.stop()


@pytest.fixture
def edge_key() -> NodeKey:
    return NodeKey(EDGE_SEED)


@pytest.fixture
def payer_key() -> PayerKey:
    return PayerKey(PAYER_SECRET)


@pytest.fixture
def payee_key() -> PayerKey:
    return PayerKey(PAYEE_SECRET)


@pytest.fixture
def domain() -> PaymentDomain:
    return PaymentDomain(LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT)


def make_terms(payer: PayerKey, payee: PayerKey, deposit: int = DEPOSIT) -> ChannelTerms:
    """Terms of a local-ledger channel between two fixed keys."""
    dom = PaymentDomain(LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT)
    cid = channel_id(dom, payer.address, payee.address, BTT_LOCAL, bytes(32))
    return ChannelTerms(dom, cid, payer.address, payee.address, BTT_LOCAL, deposit, EXPIRES_AT)


@pytest.fixture
def terms(payer_key: PayerKey, payee_key: PayerKey) -> ChannelTerms:
    return make_terms(payer_key, payee_key)


# --- Protocol factories (tests/protocol and anyone else who needs a signed message) ---

OTHER_EDGE_SEED = bytes(range(32, 64))
OTHER_PAYER_SECRET = bytes([0x33] * 32)


@pytest.fixture
def other_edge_key() -> NodeKey:
    return NodeKey(OTHER_EDGE_SEED)


@pytest.fixture
def other_payer_key() -> PayerKey:
    return PayerKey(OTHER_PAYER_SECRET)


def make_head(
    key: NodeKey,
    *,
    source: Source | None = None,
    status: int = 200,
    headers: Iterable[tuple[str, str]] = (("content-type", "text/plain"),),
    created_at: int = NOW,
    nonce: bytes = bytes(16),
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    size_hint: int = UNKNOWN_SIZE,
) -> ManifestHead:
    """A signed manifest head for ``https://example.com/a`` unless told otherwise."""
    return ManifestHead.create(
        key,
        source=source if source is not None else UrlSource("https://example.com/a"),
        status=status,
        headers=headers,
        created_at=created_at,
        nonce=nonce,
        chunk_size=chunk_size,
        size_hint=size_hint,
    )


def make_quote(
    key: NodeKey,
    payee: TronAddress,
    *,
    asset: Asset = BTT_LOCAL,
    domain: PaymentDomain | None = None,
    content_id: bytes = ANY_CONTENT,
    price_per_chunk: int = 1000,
    price_per_mib: int = 10**12,
    interval: int = 8,
    valid_from: int = NOW,
    valid_until: int = NOW + 3600,
) -> Quote:
    """A signed local-ledger quote by ``key`` paying ``payee``."""
    return Quote.create(
        key,
        payee=payee,
        asset=asset,
        domain=domain
        if domain is not None
        else PaymentDomain(LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT),
        content_id=content_id,
        price_per_chunk=price_per_chunk,
        price_per_mib=price_per_mib,
        interval=interval,
        valid_from=valid_from,
        valid_until=valid_until,
    )


def make_voucher(payer: PayerKey, terms: ChannelTerms, amount: int) -> Voucher:
    """A voucher on ``terms`` for ``amount`` in total, signed by ``payer``."""
    return Voucher.create(
        payer,
        domain=terms.domain,
        channel_id=terms.channel_id,
        payee=terms.payee,
        asset=terms.asset,
        amount=amount,
    )
