"""What the node deploys at start, and its faucet: transactions signed by the node's deployer.

The deployer is a fixed, publicly known key (like a development chain's test accounts;
the ready line prints it) holding 100 billion TRX. At start it deploys, as ordinary
signed ``CreateSmartContract`` transactions in blocks 1, 2, ...: the test BTT
(``AtlasTestToken``, 18 decimals, the deployer mints), an ``AtlasChannels`` on it,
and each token variant (no return value, ``false`` return, fee-on-transfer,
reentrant) with an ``AtlasChannels`` of its own. These transactions carry fixed
timestamps and reference block 0, so their txIDs, hence the contracts' addresses,
are the same at every start for a given chain id and close grace. The faucet (``--fund``
and ``POST /atlas/fund``) is the deployer too: a TRX transfer and a ``mint``, each a
transaction through the same checks as any broadcast.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from coincurve import PrivateKey

from cdn_edge.ledger.tron_node.blocks import Receipt
from cdn_edge.ledger.tron_node.chain import Chain, Refused
from cdn_edge.ledger.tron_node.protobuf import Msg
from cdn_edge.ledger.tron_node.settings import SUN_PER_TRX
from cdn_edge.ledger.tron_node.transactions import read_transaction
from requester.protocol import BTT, TronAddress, asset_id
from requester.protocol.payment_domain import abi_words
from requester.tron.artifacts import Artifact, load

DEPLOYER_SECRET = hashlib.sha256(b"atlas.tron-node.deployer").digest()
DEPLOYER_TRX = 100_000_000_000
GENESIS_TIME_MS = 1_700_000_000_000
"""The timestamp of the start transactions (fixed, so their txIDs are)."""
TEST_BTT = "AtlasTestToken"
VARIANTS = ("NoReturnToken", "FalseReturnToken", "FeeOnTransferToken", "ReentrantToken")
CHANNELS = "AtlasChannels"
FEE_LIMIT = 15_000 * SUN_PER_TRX
TRANSACTION_LIFETIME_MS = 60_000


class DeployerFailed(RuntimeError):
    """A transaction of the deployer was refused or failed; the text says which and why."""


@dataclass
class Deployment:
    """The contracts deployed at start (21-byte addresses)."""

    token: bytes = b""
    contract: bytes = b""
    variants: dict[str, bytes] = field(default_factory=dict)
    channels_for: dict[str, bytes] = field(default_factory=dict)


class Deployer:
    """The node's own account: signs and submits transactions like any client."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.key = PrivateKey(DEPLOYER_SECRET)
        self.address = TronAddress.of_public_key(self.key.public_key).raw
        self._count = 0

    def submit(self, kind: str, value: Msg, *, system: bool = False) -> Receipt:
        """Build, sign and submit one transaction of ``kind`` with ``value`` (JSON)."""
        if system:  # genesis: fixed times, block 0 as reference
            self._count += 1
            now, ref = GENESIS_TIME_MS + self._count, self.chain.blocks.list[0].id
        else:
            now, ref = self.chain.clock.now_ms(), self.chain.blocks.catch_up().id
        raw: Msg = {
            "contract": [{"parameter": {"value": value}, "type": kind}],
            "ref_block_bytes": ref[6:8].hex(), "ref_block_hash": ref[8:16].hex(),
            "expiration": now + TRANSACTION_LIFETIME_MS, "timestamp": now,
        }  # fmt: skip
        if kind != "TransferContract":
            raw["fee_limit"] = FEE_LIMIT
        unsigned = read_transaction({"raw_data": raw}, False)
        signature = self.key.sign_recoverable(unsigned.txid, hasher=None)
        tx = read_transaction({"raw_data": raw, "signature": [signature.hex()]}, False)
        try:
            return self.chain.submit(tx, system=system)
        except Refused as exc:
            raise DeployerFailed(f"the node refused its own {kind}: {exc.message}") from None

    def deploy(self, artifact: Artifact, args: bytes = b"") -> bytes:
        """Deploy ``artifact`` with ABI-encoded constructor ``args``; its address."""
        owner = self.address.hex()
        receipt = self.submit("CreateSmartContract", {
            "owner_address": owner,
            "new_contract": {
                "origin_address": owner, "abi": {"entrys": artifact.abi},
                "bytecode": (artifact.bytecode + args).hex(), "name": artifact.name,
                "consume_user_resource_percent": 100, "origin_energy_limit": 10_000_000,
            },
        }, system=True)  # fmt: skip
        if receipt.failed:
            raise DeployerFailed(f"deploying {artifact.name} failed: {receipt.message}")
        return receipt.contract

    def fund(self, to: bytes, sun: int, btt: int, token: bytes) -> None:
        """Send ``sun`` TRX and mint ``btt`` base units of ``token`` to ``to``."""
        if sun:
            self.submit("TransferContract", {"owner_address": self.address.hex(),
                                             "to_address": to.hex(), "amount": sun})  # fmt: skip
        if btt:
            mint = load(TEST_BTT).selector("mint(address,uint256)") + abi_words(to[1:], btt)
            receipt = self.submit("TriggerSmartContract", {
                "owner_address": self.address.hex(), "contract_address": token.hex(),
                "data": mint.hex(),
            })  # fmt: skip
            if receipt.failed:
                raise DeployerFailed(f"minting test BTT failed: {receipt.message}")


def deploy_all(chain: Chain, close_grace: int) -> tuple[Deployer, Deployment]:
    """Fund the deployer and deploy the test tokens and their channel contracts."""
    deployer = Deployer(chain)
    chain.credit(deployer.address, DEPLOYER_TRX * SUN_PER_TRX)
    done = Deployment()
    channels = load(CHANNELS)
    for name in (TEST_BTT, *VARIANTS):
        token = deployer.deploy(load(name))
        contract = deployer.deploy(channels, abi_words(token[1:], asset_id(BTT), close_grace))
        if name == TEST_BTT:
            done.token, done.contract = token, contract
        else:
            done.variants[name], done.channels_for[name] = token, contract
    return deployer, done
