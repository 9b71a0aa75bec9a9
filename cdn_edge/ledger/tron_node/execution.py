"""What each contract kind checks and does: TRX transfers, contract calls and deployments.

Validation refuses a transaction before it enters a block (java-tron's
``CONTRACT_VALIDATE_ERROR`` messages). Execution follows java-tron's VM actuator: the
energy limit is ``min(fee_limit, balance - call_value) / energy fee`` (no frozen
energy: every unit is bought with TRX at ``getEnergyFee``, 100 sun); a call that
succeeds or reverts pays for the energy it used, one that runs out of energy or halts
pays for the whole limit (so past ``fee_limit`` the fee is ``fee_limit``); only a
success changes contract state or moves ``call_value``. The caller pays all the energy
(a contract's ``consume_user_resource_percent`` is kept but not applied). A contract's
address is TRON's: from the txID and the owner (:func:`.transactions.created_address`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from cdn_edge.ledger.tron_node.blocks import Block, Receipt
from cdn_edge.ledger.tron_node.machine import Machine, Outcome
from cdn_edge.ledger.tron_node.protobuf import Msg
from cdn_edge.ledger.tron_node.transactions import Transaction, created_address
from requester.protocol import TronAddress
from requester.protocol.payment_domain import keccak256

CONTRACT_RESULT_SIZE = 64
"""Bytes java-tron adds to a contract transaction's size for its result."""


class Invalid(Exception):
    """A transaction its contract's validation refuses; the text is java-tron's."""


@dataclass(frozen=True)
class Fees:
    energy_fee: int = 100
    """Sun per unit of energy (``getEnergyFee``)."""
    max_fee_limit: int = 15_000_000_000
    """The largest ``fee_limit`` a transaction may set (``getMaxFeeLimit``), in sun."""


@dataclass
class Contract:
    """A deployed contract: java-tron's ``SmartContract`` and the code it runs."""

    smart: Msg
    runtime: bytes


class Executor:
    def __init__(
        self, machine: Machine, accounts: dict[bytes, int], contracts: dict[bytes, Contract],
        fees: Fees,
    ) -> None:  # fmt: skip
        self.machine = machine
        self.accounts = accounts
        self.contracts = contracts
        self.fees = fees

    def validate(self, tx: Transaction) -> None:
        """Raise Invalid with java-tron's reason if ``tx`` cannot be executed."""
        p, owner = tx.params, tx.owner
        name = tx.kind.removesuffix("Contract")
        if owner not in self.accounts:
            raise Invalid(f"Validate {name}Contract error, no OwnerAccount.")
        if tx.kind == "TransferContract":
            to = p.get("to_address", b"")
            if len(to) != 21 or to[0] != 0x41:
                raise Invalid("Invalid toAddress!")
            if p.get("amount", 0) <= 0:
                raise Invalid("Amount must be greater than 0.")
            if to == owner:
                raise Invalid("Cannot transfer TRX to yourself.")
            if self.machine.balance(owner) < p["amount"]:
                raise Invalid("Validate TransferContract error, balance is not sufficient.")
            return
        if p.get("call_token_value", 0) or p.get("token_id", 0):
            raise Invalid("TRC-10 tokens are not modeled by this node")
        if not 0 <= tx.fee_limit <= self.fees.max_fee_limit:
            raise Invalid(f"feeLimit must be >= 0 and <= {self.fees.max_fee_limit}")
        contract: Msg = p.get("new_contract", {}) if tx.kind == "CreateSmartContract" else p
        value = contract.get("call_value", 0)
        if value < 0:
            raise Invalid("callValue must be >= 0")
        if tx.kind == "TriggerSmartContract" and p.get("contract_address") not in self.contracts:
            raise Invalid("No contract or not a smart contract")
        if tx.kind == "CreateSmartContract":
            _check_new_contract(tx, self.accounts)
        if self.machine.balance(owner) < value:
            raise Invalid("Validate InternalTransfer error, balance is not sufficient.")

    def execute(self, tx: Transaction, block: Block, size: int) -> Receipt:
        """Apply a validated ``tx`` in ``block``; its receipt."""
        common = partial(Receipt, tx.txid, block.number, block.timestamp, tx.kind)
        if tx.kind == "TransferContract":
            to, amount = tx.params["to_address"], tx.params["amount"]
            self.machine.set_balance(tx.owner, self.machine.balance(tx.owner) - amount)
            self.machine.set_balance(to, self.machine.balance(to) + amount)
            self.accounts.setdefault(to, block.timestamp)
            return common(result="", net_usage=size)
        owner, fee_price = tx.owner, self.fees.energy_fee
        if tx.kind == "CreateSmartContract":
            smart: Msg = tx.params["new_contract"]
            target, value = created_address(tx), smart.get("call_value", 0)
        else:
            target, value = tx.params["contract_address"], tx.params.get("call_value", 0)
        spendable = max(self.machine.balance(owner) - value, 0)
        limit = min(spendable // fee_price, tx.fee_limit // fee_price)
        outcome: Outcome
        if tx.kind == "CreateSmartContract":
            outcome = self.machine.create(owner, target, smart.get("bytecode", b""), value, limit)
            if outcome.ok:
                self._register(tx, target, outcome.output, block.timestamp)
        else:
            outcome = self.machine.call(owner, target, tx.params.get("data", b""), value, limit)
        fee = outcome.energy * fee_price
        self.machine.set_balance(owner, self.machine.balance(owner) - fee)
        return common(
            result=outcome.result, output=outcome.output, energy=outcome.energy,
            fee=fee, logs=outcome.logs if outcome.ok else (), contract=target,
            message=outcome.message, net_usage=size + CONTRACT_RESULT_SIZE,
        )  # fmt: skip

    def _register(self, tx: Transaction, address: bytes, runtime: bytes, now: int) -> None:
        smart = dict(tx.params["new_contract"])
        smart.update(contract_address=address, code_hash=keccak256(runtime), trx_hash=tx.txid)
        self.contracts[address] = Contract(smart, runtime)
        self.accounts[address] = now


def _check_new_contract(tx: Transaction, accounts: dict[bytes, int]) -> None:
    smart: Msg = tx.params.get("new_contract", {})
    if smart.get("origin_address", b"") != tx.owner:
        raise Invalid("OwnerAddress is not equals OriginAddress")
    if len(smart.get("name", "").encode()) > 32:
        raise Invalid("contractName's length cannot be greater than 32")
    if not 0 <= smart.get("consume_user_resource_percent", 0) <= 100:
        raise Invalid("percent must be >= 0 and <= 100")
    if smart.get("origin_energy_limit", 0) <= 0:
        raise Invalid("The originEnergyLimit must be > 0")
    address = created_address(tx)
    if address in accounts:
        raise Invalid("Trying to create a contract with existing contract address: "
                      f"{TronAddress(address)}")  # fmt: skip
