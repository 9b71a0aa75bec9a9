"""Shared test factories: fixed keys and a ready channel, so tests stay short and agree."""

from __future__ import annotations

import pytest

from requester.protocol import (
    BTT_LOCAL,
    LOCAL_CHAIN_ID,
    LOCAL_LEDGER_CONTRACT,
    ChannelTerms,
    NodeKey,
    PayerKey,
    PaymentDomain,
    channel_id,
)

EDGE_SEED = bytes(range(32))
PAYER_SECRET = bytes([0x11] * 32)
PAYEE_SECRET = bytes([0x22] * 32)
DEPOSIT = 10**18
EXPIRES_AT = 2_000_000_000
NOW = 1_700_000_000


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
