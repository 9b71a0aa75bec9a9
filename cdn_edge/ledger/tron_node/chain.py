"""The chain's state and the rules a broadcast transaction must pass, as java-tron applies them.

State: TRX balances in sun (the EVM's balances, so contracts see them), which accounts
exist, the contracts deployed with their ABI, blocks, transactions and receipts; all in
memory. A broadcast is refused, with java-tron's code and message, when it has expired
or expires more than a day ahead, is not signed by its owner, names an unknown
reference block (TAPOS), was seen before, or fails its contract's validation; a refused
transaction changes nothing. Otherwise it is executed (:mod:`.execution`) in a block of
its own: a contract call that reverts or runs out of energy is still included, with a
FAILED receipt, and changes nothing but the fee.
"""

from __future__ import annotations

from cdn_edge.ledger.tron_node.blocks import Blocks, Clock, Receipt
from cdn_edge.ledger.tron_node.execution import Contract, Executor, Fees, Invalid
from cdn_edge.ledger.tron_node.machine import Machine, Outcome
from cdn_edge.ledger.tron_node.transactions import BadSignature, Transaction, signer

MAX_EXPIRATION_MS = 24 * 3600 * 1000
"""How far past the head block a transaction may expire (java-tron's constant)."""
MAX_TRANSACTION_SIZE = 500 * 1024
CONSTANT_ENERGY_LIMIT = 100_000_000
"""Energy a constant call may use (java-tron's ``maxEnergyLimitForConstant``)."""


class Refused(Exception):
    """A broadcast refused before execution: java-tron's response code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Chain:
    def __init__(self, chain_id: int, clock: Clock | None = None, fees: Fees | None = None) -> None:
        self.chain_id = chain_id
        self.fees = fees or Fees()
        self.clock = clock or Clock()
        self.blocks = Blocks(chain_id, self.clock)
        self.machine = Machine(chain_id)
        self.accounts: dict[bytes, int] = {}
        """Existing accounts (21-byte addresses) and when each was created (ms)."""
        self.contracts: dict[bytes, Contract] = {}
        self.transactions: dict[bytes, tuple[Transaction, Receipt]] = {}
        self.executor = Executor(self.machine, self.accounts, self.contracts, self.fees)

    def balance(self, address: bytes) -> int:
        return self.machine.balance(address)

    def credit(self, address: bytes, sun: int) -> None:
        """Add TRX to an account, creating it (genesis and the node's own funding only)."""
        self.accounts.setdefault(address, self.clock.now_ms())
        self.machine.set_balance(address, self.machine.balance(address) + sun)

    def submit(self, tx: Transaction, *, system: bool = False) -> Receipt:
        """Check ``tx`` as java-tron's broadcast does, then execute it in a new block.

        ``system`` transactions (the node's own, at genesis) skip the expiration and
        reference-block checks: their fixed timestamps keep contract addresses stable.
        """
        now = self.clock.now_ms()
        if not system and tx.expiration <= now:
            raise Refused("TRANSACTION_EXPIRATION_ERROR", "Transaction expired")
        self._check_signatures(tx)
        if not system:
            raw = tx.raw
            if not self.blocks.tapos_ok(raw.get("ref_block_bytes", b""),
                                        raw.get("ref_block_hash", b"")):  # fmt: skip
                raise Refused("TAPOS_ERROR", "Tapos check error.")
            if tx.expiration > now + MAX_EXPIRATION_MS:
                raise Refused("TRANSACTION_EXPIRATION_ERROR", "Transaction expired")
        size = len(tx.raw_bytes) + sum(len(s) + 3 for s in tx.signatures)
        if size > MAX_TRANSACTION_SIZE:
            raise Refused("TOO_BIG_TRANSACTION_ERROR",
                          f"Too big transaction, the size is {size} bytes, "
                          f"maxTxSize {MAX_TRANSACTION_SIZE}")  # fmt: skip
        if tx.txid in self.transactions:
            raise Refused("DUP_TRANSACTION_ERROR", "Dup transaction.")
        try:
            self.executor.validate(tx)
        except Invalid as exc:
            raise Refused("CONTRACT_VALIDATE_ERROR", f"Contract validate error : {exc}") from None
        block = self.blocks.append([tx.txid])
        self.machine.set_block(block.number, block.timestamp // 1000)
        receipt = self.executor.execute(tx, block, size)
        self.transactions[tx.txid] = (tx, receipt)
        return receipt

    def _check_signatures(self, tx: Transaction) -> None:
        def refuse(reason: str) -> Refused:
            return Refused("SIGERROR", f"Validate signature error: {reason}")

        if not tx.signatures:
            raise refuse("miss sig or contract")
        if tx.permission_id not in (0, 2):  # an account's owner and active permissions
            raise refuse("Permission for this, does not exist!")
        if len(tx.signatures) > 1:
            raise refuse(f"Signature count is {len(tx.signatures)} more than key counts of "
                         "permission : 1")  # fmt: skip
        signature = tx.signatures[0]
        try:
            who = signer(tx.txid, signature)
        except BadSignature as exc:
            raise refuse(str(exc)) from None
        if who.raw != tx.owner:
            raise refuse(f"{signature.hex()} is signed by {who} but it is not contained of "
                         "permission.")  # fmt: skip

    def constant_call(self, owner: bytes, contract: bytes, data: bytes, value: int) -> Outcome:
        """Run a call against the head block's state and roll it back (never a change)."""
        if contract not in self.contracts:
            raise Invalid("Smart contract is not exist.")
        head = self.blocks.catch_up()
        self.machine.set_block(head.number, head.timestamp // 1000)
        return self.machine.call(owner, contract, data, value, CONSTANT_ENERGY_LIMIT,
                                 commit=False)  # fmt: skip

    def estimate_energy(self, owner: bytes, contract: bytes, data: bytes, value: int) -> Outcome:
        """The least energy limit the call succeeds with (java-tron searches it too: with
        the 63/64 rule a call can need more than it uses). A failure comes back as is."""
        first = self.constant_call(owner, contract, data, value)
        if not first.ok:
            return first
        low, high = first.energy - 1, first.energy
        while not self.machine.call(owner, contract, data, value, high, commit=False).ok:
            if high >= CONSTANT_ENERGY_LIMIT:
                return first
            low, high = high, min(high * 2, CONSTANT_ENERGY_LIMIT)
        while high - low > 1:
            middle = (low + high) // 2
            if self.machine.call(owner, contract, data, value, middle, commit=False).ok:
                high = middle
            else:
                low = middle
        return Outcome("SUCCESS", first.output, high, first.logs)

    def receipt(self, txid: bytes) -> Receipt | None:
        found = self.transactions.get(txid)
        return found[1] if found is not None else None
