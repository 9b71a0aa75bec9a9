"""Spending prepaid credit: a payer-signed order, good once, to serve one chunk from it.

Credit is what a payer paid a payee ahead and was not yet served (a voucher for
a full-size chunk sent compressed, a paid request the payee could not answer).
Channel ids are public (ledgers list them), so a channel id alone must not
spend it. A :class:`CreditSpend` names the channel, the content and chunk it
pays for, when it was made and a random nonce, signed with the payer's TRON
key over an EIP-712 digest of its own type (a contract checking vouchers can
never take it for one). The payee checks it with :func:`check_credit_spend`
and honours each at most once with a :class:`CreditGuard`, which also lets a
voucher that spends credit (one overtaken by a larger one) do so only once.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from requester.protocol.channel import ChannelTerms
from requester.protocol.codec import (
    MAGIC_PREFIX,
    U64_MAX,
    Reader,
    Writer,
    b64url_decode,
    b64url_encode,
)
from requester.protocol.errors import (
    CreditNotPayer,
    CreditSpendExpired,
    CreditSpendReplayed,
    MalformedMessage,
    WrongBinding,
)
from requester.protocol.identity import SECP256K1_SIG_SIZE, PayerKey, TronAddress, recover_signer
from requester.protocol.manifest import MAX_CHUNKS
from requester.protocol.payment_domain import PaymentDomain, abi_words, keccak256

CREDIT_MAGIC = MAGIC_PREFIX + b"D\x01"
CREDIT_SPEND_SIZE = 4 + 8 + 20 + 32 + 32 + 4 + 8 + 16 + SECP256K1_SIG_SIZE
CREDIT_HEADER = "Atlas-Credit"
CREDIT_SPEND_TYPEHASH = keccak256(
    b"CreditSpend(bytes32 channelId,bytes32 contentId,uint32 index,uint64 issuedAt,uint128 nonce)"
)
CREDIT_WINDOW = 120
"""Seconds a spend's ``issued_at`` may be from the payee's clock, either way: clock skew
plus the time a request may wait for a chunk that is still arriving."""
GUARD_LIMIT = 4096
"""Spends (and, separately, voucher amounts) one channel's guard remembers at most."""
NONCE_SIZE = 16
_NOBODY = TronAddress(b"\x41" + bytes(20))
"""Stands in for the signer while the digest to recover it from is computed."""


@dataclass(frozen=True, slots=True)
class CreditSpend:
    """A signed order to pay for chunk ``index`` of ``content_id`` from a channel's credit.

    ``signer`` is who signed it (recovered from the signature on decode); the payee
    serves from credit only if that is the channel's payer.
    """

    domain: PaymentDomain
    channel_id: bytes
    content_id: bytes
    index: int
    issued_at: int
    nonce: bytes
    signature: bytes
    signer: TronAddress = field(compare=False)

    def __post_init__(self) -> None:
        if len(self.channel_id) != 32 or len(self.content_id) != 32:
            raise MalformedMessage("credit spend: channel and content ids are 32 bytes")
        if not 0 <= self.index < MAX_CHUNKS:
            raise MalformedMessage(f"credit spend: chunk index must be below {MAX_CHUNKS}")
        if not 0 <= self.issued_at <= U64_MAX or len(self.nonce) != NONCE_SIZE:
            raise MalformedMessage("credit spend: issued_at is a u64, the nonce 16 bytes")

    @classmethod
    def create(
        cls, key: PayerKey, *, domain: PaymentDomain, channel_id: bytes, content_id: bytes,
        index: int, issued_at: int, nonce: bytes,
    ) -> CreditSpend:  # fmt: skip
        """Sign a spend; ``nonce`` must be fresh random bytes (the caller draws them)."""
        unsigned = cls(domain, channel_id, content_id, index, issued_at, nonce, b"", key.address)
        signature = key.sign_digest(unsigned.digest())
        return cls(domain, channel_id, content_id, index, issued_at, nonce, signature, key.address)

    @classmethod
    def decode(cls, data: bytes) -> CreditSpend:
        """Parse a spend and recover its signer (who it is is checked against the channel)."""
        if len(data) != CREDIT_SPEND_SIZE:
            raise MalformedMessage(
                f"credit spend must be {CREDIT_SPEND_SIZE} bytes, got {len(data)}"
            )
        r = Reader(data, CREDIT_MAGIC, "credit spend")
        domain = PaymentDomain.of(r.u64(), r.fixed(20))
        channel_id, content_id, index = r.fixed(32), r.fixed(32), r.u32()
        issued_at, nonce, signature = r.u64(), r.fixed(NONCE_SIZE), r.fixed(SECP256K1_SIG_SIZE)
        r.end()
        unsigned = cls(domain, channel_id, content_id, index, issued_at, nonce, b"", _NOBODY)
        signer = recover_signer(unsigned.digest(), signature, "credit spend")
        return cls(domain, channel_id, content_id, index, issued_at, nonce, signature, signer)

    @classmethod
    def from_header(cls, value: str) -> CreditSpend:
        return cls.decode(b64url_decode(value, CREDIT_SPEND_SIZE, CREDIT_HEADER))

    def struct_hash(self) -> bytes:
        return keccak256(
            abi_words(
                CREDIT_SPEND_TYPEHASH, self.channel_id, self.content_id, self.index,
                self.issued_at, int.from_bytes(self.nonce, "big"),
            )
        )  # fmt: skip

    def digest(self) -> bytes:
        """The 32 bytes the payer signs: EIP-712 in the ledger's domain, as for vouchers."""
        return self.domain.typed_digest(self.struct_hash())

    def encode(self) -> bytes:
        w = Writer(CREDIT_MAGIC).u64(self.domain.chain_id).fixed(self.domain.contract, 20)
        w.fixed(self.channel_id, 32).fixed(self.content_id, 32).u32(self.index)
        w.u64(self.issued_at).fixed(self.nonce, NONCE_SIZE)
        return w.fixed(self.signature, SECP256K1_SIG_SIZE).getvalue()

    def to_header(self) -> str:
        return b64url_encode(self.encode())


def check_credit_spend(
    spend: CreditSpend, terms: ChannelTerms, content_id: bytes, index: int, now: int
) -> None:
    """Refuse ``spend`` unless the channel's payer signed it, lately, for this very chunk."""
    if spend.domain != terms.domain or spend.channel_id != terms.channel_id:
        raise WrongBinding("credit spend is for another ledger or channel")
    if spend.signer != terms.payer:
        raise CreditNotPayer(
            f"credit spend is signed by {spend.signer}, not by the channel's payer; "
            "only the payer spends its credit"
        )
    if (spend.content_id, spend.index) != (content_id, index):
        raise WrongBinding("credit spend is for another content or chunk")
    if abs(now - spend.issued_at) > CREDIT_WINDOW:
        raise CreditSpendExpired(
            f"credit spend was issued at {spend.issued_at}, more than {CREDIT_WINDOW} s from "
            f"now ({now}); sign a new one"
        )


class CreditGuard:
    """What one channel's credit was spent with lately, so nothing spends it twice.

    Signed spends are kept until the time check would refuse them anyway;
    vouchers that spend credit (amount at or below what was paid) are kept by
    amount, with a floor at what was paid when the guard started, since the
    vouchers before it are unknown. Past ``limit`` entries, the oldest go and a
    floor rises under them (everything at or below it is refused), so memory
    stays bounded however much the payer signs.
    """

    def __init__(self, paid: int, *, limit: int = GUARD_LIMIT) -> None:
        self._limit = limit
        self._spends: list[tuple[int, bytes]] = []
        """Heap of (issued_at, nonce) of honoured spends."""
        self._nonces: set[bytes] = set()
        self._time_floor = -1
        self._amounts: list[int] = []
        self._amount_set: set[int] = set()
        self._amount_floor = paid

    def __len__(self) -> int:
        return len(self._nonces) + len(self._amount_set)

    def check_spend(self, spend: CreditSpend, now: int) -> None:
        self._expire(now)
        if spend.nonce in self._nonces or spend.issued_at <= self._time_floor:
            raise CreditSpendReplayed("this credit spend was already honoured; sign a new one")

    def record_spend(self, spend: CreditSpend, now: int) -> None:
        self._expire(now)
        heapq.heappush(self._spends, (spend.issued_at, spend.nonce))
        self._nonces.add(spend.nonce)
        while len(self._spends) > self._limit:
            issued_at, nonce = heapq.heappop(self._spends)
            self._nonces.discard(nonce)
            self._time_floor = max(self._time_floor, issued_at)

    def voucher_used(self, amount: int) -> bool:
        """Whether a voucher no larger than what was paid already spent what it may (or is
        older than the guard): it must not spend credit again."""
        return amount <= self._amount_floor or amount in self._amount_set

    def record_voucher(self, amount: int) -> None:
        if amount in self._amount_set or amount <= self._amount_floor:
            return
        heapq.heappush(self._amounts, amount)
        self._amount_set.add(amount)
        while len(self._amounts) > self._limit:
            oldest = heapq.heappop(self._amounts)
            self._amount_set.discard(oldest)
            self._amount_floor = max(self._amount_floor, oldest)

    def _expire(self, now: int) -> None:
        while self._spends and self._spends[0][0] < now - CREDIT_WINDOW:
            _, nonce = heapq.heappop(self._spends)
            self._nonces.discard(nonce)
