"""Blocks, the clock tests control, and what a TRON transaction leaves behind (its receipt).

Every broadcast transaction gets a block of its own, stamped with the clock. The clock
is the wall clock plus an offset that ``POST /atlas/time`` moves, so tests can reach
a channel's expiry without waiting. When the head block is older than a slot (3 s) and
someone reads it or moves the clock, an empty block is added at the clock's time, so
the head block's time follows the clock as it does on a live chain (java-tron checks a
transaction's expiration against it, and clients may build expirations from it).
Every block is solid at once.

A block id is java-tron's shape (the 8-byte block number, then 24 bytes of a hash of
the header); the header hash is the node's own (it does not rebuild java-tron's
transaction Merkle root). Block 0 ends with the chain id, as TRON's genesis block id
ends with the value ``block.chainid`` reads (``0x2b6653dc`` on mainnet).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cdn_edge.ledger.tron_node.machine import Log
from cdn_edge.ledger.tron_node.protobuf import length_delimited, varint_field

SLOT_MS = 3000
WITNESS = b"\x41" + hashlib.sha256(b"atlas tron-node witness").digest()[:20]
"""The one block producer this node pretends to be."""
BLOCK_VERSION = 30


class Clock:
    """Unix time as the chain sees it: the wall clock moved by what tests asked for."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self.offset = 0.0

    def now(self) -> float:
        return self._wall() + self.offset

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def set(self, unix: float) -> None:
        self.offset = unix - self._wall()


@dataclass
class Block:
    number: int
    timestamp: int
    """Milliseconds since the epoch, as TRON block headers hold it."""
    parent: bytes
    txids: list[bytes] = field(default_factory=list)
    id: bytes = b""

    @property
    def tx_root(self) -> bytes:
        """The node's stand-in for java-tron's transaction Merkle root."""
        return hashlib.sha256(b"".join(self.txids)).digest()

    def seal(self) -> None:
        header = (
            varint_field(1, self.timestamp)
            + length_delimited(2, self.tx_root)
            + length_delimited(3, self.parent)
            + varint_field(7, self.number)
            + length_delimited(9, WITNESS)
            + varint_field(10, BLOCK_VERSION)
        )
        self.id = self.number.to_bytes(8, "big") + hashlib.sha256(header).digest()[8:]


def genesis_block(chain_id: int) -> Block:
    """Block 0, at time 0 like TRON's; its id ends with the 4-byte chain id."""
    block = Block(0, 0, bytes(32))
    digest = hashlib.sha256(b"atlas tron-node genesis").digest()
    block.id = bytes(8) + digest[8:28] + chain_id.to_bytes(4, "big")
    return block


@dataclass(frozen=True)
class Receipt:
    """What a transaction did (java-tron's ``TransactionInfo``)."""

    txid: bytes
    block_number: int
    block_time: int
    kind: str
    result: str
    """TRON's ``contractResult`` (``SUCCESS``, ``REVERT``, ``OUT_OF_ENERGY``...);
    empty for a TRX transfer, which runs no contract."""
    output: bytes = b""
    energy: int = 0
    fee: int = 0
    logs: tuple[Log, ...] = ()
    contract: bytes = b""
    """The contract called or created (21 bytes), if any."""
    message: str = ""
    net_usage: int = 0

    @property
    def failed(self) -> bool:
        return self.result not in ("", "SUCCESS")


class Blocks:
    """The chain of blocks and the recent-block index the TAPOS check reads."""

    def __init__(self, chain_id: int, clock: Clock) -> None:
        self.clock = clock
        self.list = [genesis_block(chain_id)]
        self._recent: dict[bytes, bytes] = {}
        self._index(self.list[0])

    @property
    def head(self) -> Block:
        return self.list[-1]

    def catch_up(self) -> Block:
        """The head block, after adding an empty one if the head is a slot behind the clock."""
        if self.clock.now_ms() >= self.head.timestamp + SLOT_MS:
            self.append([])
        return self.head

    def append(self, txids: list[bytes]) -> Block:
        """A new head block at the clock's time (after its parent's), holding ``txids``."""
        parent = self.head
        block = Block(parent.number + 1, max(self.clock.now_ms(), parent.timestamp + 1),
                      parent.id, txids)  # fmt: skip
        block.seal()
        self.list.append(block)
        self._index(block)
        return block

    def _index(self, block: Block) -> None:
        self._recent[block.id[6:8]] = block.id[8:16]

    def tapos_ok(self, ref_block_bytes: bytes, ref_block_hash: bytes) -> bool:
        """Whether a transaction's reference block is among the last 65536 blocks."""
        return len(ref_block_bytes) == 2 and self._recent.get(ref_block_bytes) == ref_block_hash

    def by_number(self, number: int) -> Block | None:
        return self.list[number] if 0 <= number < len(self.list) else None

    def by_id(self, block_id: bytes) -> Block | None:
        block = self.by_number(int.from_bytes(block_id[:8], "big")) if len(block_id) == 32 else None
        return block if block is not None and block.id == block_id else None
