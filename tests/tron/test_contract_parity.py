"""AtlasChannels computes what requester/protocol computes, on TRON's chain ids.

The committed bytecode runs in pyrevm with the block's chain id set; its domain
separator, chain id, channel ids and voucher digests must equal the Python values,
so a voucher the SDK signs is one the contract pays.
"""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path

import pytest
from eth_abi.abi import encode as abi_encode

from requester.protocol import BTT, PaymentDomain, asset_id, channel_id
from requester.tron import artifacts
from requester.tron.artifacts import SOLC_VERSION, StaleArtifact, load
from tests.tron.contract_evm import (
    CHANNELS,
    DEPLOYER,
    GRACE,
    PAYEE,
    PAYEE_ADDRESS,
    PAYER,
    PAYER_KEY,
    Chain,
    calldata,
)

CHAIN_IDS = {
    "mainnet": (0x2B6653DC, 0x2B6653DC),
    "nile": (0xCD8690DC, 0xCD8690DC),
    "max-u32": (2**32 - 1, 2**32 - 1),
    "masked": ((0xA71A5 << 32) | 0x2B6653DC, 0x2B6653DC),  # block.chainid & 0xffffffff
}
AMOUNTS = (0, 1, 10**18, 2**128 - 1)
ARTIFACTS = ["AtlasChannels", "AtlasTestToken", "NoReturnToken", "FalseReturnToken"]
ARTIFACTS += ["FeeOnTransferToken", "ReentrantToken"]


@cache
def opened(where: str) -> tuple[Chain, bytes]:
    chain = Chain(chain_id=CHAIN_IDS[where][0])
    chain.fund()
    return chain, chain.open()


@pytest.mark.parametrize("where", CHAIN_IDS)
def test_domain_and_channel_ids_are_the_protocols(where: str) -> None:
    chain, cid = opened(where)
    # An independent expectation: the masked chain id and the deployed address.
    domain = PaymentDomain(CHAIN_IDS[where][1], bytes.fromhex(chain.channels[2:]))
    assert chain.read("chainId") == domain.chain_id
    assert chain.read("domainSeparator") == domain.separator
    assert chain.read("assetId") == asset_id(BTT)
    assert (chain.read("token").lower(), chain.read("closeGrace")) == (chain.token, GRACE)
    assert cid == channel_id(domain, PAYER_KEY.address, PAYEE_ADDRESS, BTT, bytes(32))
    for salt in (bytes(32), b"\x01" * 32, b"\xff" * 32):
        expected = channel_id(domain, PAYER_KEY.address, PAYEE_ADDRESS, BTT, salt)
        assert chain.read("channelIdOf", PAYER, PAYEE, salt) == expected


@pytest.mark.parametrize("amount", AMOUNTS)
@pytest.mark.parametrize("where", CHAIN_IDS)
def test_voucher_digest_is_the_protocols(where: str, amount: int) -> None:
    chain, cid = opened(where)
    assert chain.read("voucherDigest", cid, amount) == chain.voucher(cid, amount).digest()


def test_channel_id_binds_chain_contract_payer_payee_and_salt() -> None:
    mainnet, cid = opened("mainnet")
    # A second deployment on the same chain: another contract, another id for the same terms.
    args = abi_encode(["address", "bytes32", "uint64"], [mainnet.token, asset_id(BTT), GRACE])
    second = mainnet.evm.deploy(DEPLOYER, CHANNELS.bytecode + args)
    query = calldata(CHANNELS, "channelIdOf", (PAYER, PAYEE, bytes(32)))
    elsewhere = bytes(mainnet.evm.message_call(PAYER, second, query))
    domain = PaymentDomain(mainnet.domain.chain_id, bytes.fromhex(second[2:]))
    assert elsewhere == channel_id(domain, PAYER_KEY.address, PAYEE_ADDRESS, BTT, bytes(32))
    nile = opened("nile")[0]
    assert nile.channels == mainnet.channels  # the same address on another chain
    ids = {
        cid,
        elsewhere,
        nile.read("channelIdOf", PAYER, PAYEE, bytes(32)),
        mainnet.read("channelIdOf", PAYEE, PAYER, bytes(32)),
        mainnet.read("channelIdOf", PAYER, "0x" + "c4" * 20, bytes(32)),
        mainnet.read("channelIdOf", PAYER, PAYEE, b"\x01" + bytes(31)),
    }
    assert len(ids) == 6


def test_artifacts_are_compiled_from_the_committed_sources() -> None:
    for name in ARTIFACTS:
        raw = json.loads((artifacts.CONTRACTS / f"{name}.json").read_text(encoding="utf-8"))
        assert raw["compiler"]["version"].startswith(SOLC_VERSION)
        assert raw["settings"]["evmVersion"] == "paris"
        assert raw["settings"]["metadata"] == {"bytecodeHash": "none"}
        artifact = load(name)  # checks the source's SHA-256 and the selectors
        assert artifact.bytecode and artifact.deployed_bytecode


def test_a_source_edited_without_recompiling_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = shutil.copytree(artifacts.CONTRACTS, tmp_path / "contracts")
    with (copy / "AtlasChannels.sol").open("a", encoding="utf-8") as sol:
        sol.write("// an edit\n")
    monkeypatch.setattr(artifacts, "CONTRACTS", copy)
    with pytest.raises(StaleArtifact, match="recompile"):
        load.__wrapped__("AtlasChannels")
    assert load.__wrapped__("AtlasTestToken").name == "AtlasTestToken"
