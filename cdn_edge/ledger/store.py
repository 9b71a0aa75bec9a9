"""The embedded ledger's state in SQLite, changed only in whole transactions.

Every call runs in one ``BEGIN IMMEDIATE`` transaction that checks, moves
money and records the call (by its hash, for idempotency) together, under WAL
with ``synchronous=FULL``. A crash before ``COMMIT`` leaves nothing; a crash
after it leaves the whole call, and its retry is answered from the record.
Amounts are Python ints stored as decimal text (they exceed 64 bits).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cdn_edge.ledger.refusals import bad_request, conflict, insufficient_funds, not_found
from requester.failpoints import reached
from requester.protocol import (
    Asset,
    OpenChannel,
    PaymentDomain,
    ReclaimChannel,
    SignedOp,
    TopUpChannel,
    TronAddress,
    Voucher,
    WrongBinding,
    asset_by_code,
    format_amount,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS balances (
    address TEXT NOT NULL, asset INTEGER NOT NULL, amount TEXT NOT NULL,
    PRIMARY KEY (address, asset));
CREATE TABLE IF NOT EXISTS nonces (address TEXT PRIMARY KEY, next INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS channels (
    channel_id TEXT PRIMARY KEY, payer TEXT NOT NULL, payee TEXT NOT NULL,
    asset INTEGER NOT NULL, deposit TEXT NOT NULL, redeemed TEXT NOT NULL,
    expires_at INTEGER NOT NULL, opened_at INTEGER NOT NULL, status TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS channels_payer ON channels (payer);
CREATE INDEX IF NOT EXISTS channels_payee ON channels (payee);
CREATE TABLE IF NOT EXISTS calls (op_hash TEXT PRIMARY KEY, result TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, kind TEXT NOT NULL,
    address TEXT NOT NULL, counterparty TEXT, channel_id TEXT, asset INTEGER NOT NULL,
    amount TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_address ON events (address);
"""

MAX_EXPIRY = 253_402_300_799
"""9999-12-31T23:59:59Z: later expiries are refused (SQLite integers are signed 64-bit)."""
CrashHook = Callable[[str], None]
Result = dict[str, object]


def _no_crash(point: str) -> None:
    """Production hook: nothing. Tests inject one that kills the process at ``point``."""


class LedgerStore:
    def __init__(self, path: Path, domain: PaymentDomain, crash: CrashHook = _no_crash) -> None:
        self.domain = domain
        self._crash = crash
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- calls that change state -------------------------------------------------

    def mint(
        self, address: TronAddress, asset: Asset, amount: int, now: int, request_id: str | None
    ) -> Result:
        """Faucet: create ``amount`` on ``address`` (local networks only).

        A ``request_id`` makes a retry return the first answer instead of minting again.
        """
        key = None if request_id is None else f"faucet:{address}:{request_id}"
        with self._transaction():
            if key is not None:
                done = self._db.execute(
                    "SELECT result FROM calls WHERE op_hash=?", (key,)
                ).fetchone()
                if done is not None:
                    return {**json.loads(done["result"]), "replayed": True}
            self._add(address, asset, amount)
            self._event(now, "mint", address, None, None, asset, amount)
            result = {**self.account(address), "minted": str(amount)}
            if key is not None:
                self._db.execute("INSERT INTO calls VALUES (?, ?)", (key, json.dumps(result)))
        return {**result, "replayed": False}

    def apply(self, call: SignedOp, now: int) -> Result:
        """Verify and apply a signed call exactly once; a retry returns the first result."""
        call.verify(self.domain)
        op_hash = call.op_hash(self.domain).hex()
        with self._transaction():
            done = self._db.execute(
                "SELECT result FROM calls WHERE op_hash=?", (op_hash,)
            ).fetchone()
            if done is not None:
                return {**json.loads(done["result"]), "replayed": True}
            self._use_nonce(call.op.account, call.op.nonce)
            op = call.op
            if isinstance(op, OpenChannel):
                result = self._open(op, now)
            elif isinstance(op, TopUpChannel):
                result = self._top_up(op, now)
            else:
                result = self._reclaim(op, now)
            self._db.execute("INSERT INTO calls VALUES (?, ?)", (op_hash, json.dumps(result)))
        if isinstance(call.op, OpenChannel):
            reached("ledger.open_committed")
        return {**result, "replayed": False}

    def redeem(self, voucher: Voucher, now: int) -> Result:
        """Pay the payee what the voucher adds to what was already redeemed."""
        if voucher.domain != self.domain:
            raise WrongBinding("voucher is for another ledger (chain id or contract)")
        with self._transaction():
            ch = self._channel_row(voucher.channel_id)
            for what, got, want in (
                ("payer", str(voucher.payer), ch["payer"]),
                ("payee", str(voucher.payee), ch["payee"]),
                ("asset", voucher.asset.code, ch["asset"]),
            ):
                if got != want:
                    raise WrongBinding(f"voucher {what} does not match the channel")
            asset = asset_by_code(ch["asset"])
            if ch["status"] != "open" or now >= ch["expires_at"]:
                raise conflict(
                    "channel_expired", "channel has expired; vouchers can no longer be redeemed"
                )
            redeemed, deposit = int(ch["redeemed"]), int(ch["deposit"])
            if voucher.amount > deposit:
                raise conflict("deposit_exceeded", "voucher exceeds the channel's deposit")
            if voucher.amount <= redeemed:
                raise conflict(
                    "already_redeemed",
                    f"channel already redeemed up to {format_amount(redeemed, asset)}",
                )
            gain = voucher.amount - redeemed
            self._db.execute(
                "UPDATE channels SET redeemed=? WHERE channel_id=?",
                (str(voucher.amount), voucher.channel_id.hex()),
            )
            self._add(voucher.payee, asset, gain)
            self._event(
                now, "redeem", voucher.payee, voucher.payer, voucher.channel_id, asset, gain
            )
        reached("ledger.redeem_committed")
        return {"channel": self.channel(voucher.channel_id), "credited": str(gain)}

    # -- reads ---------------------------------------------------------------------

    def account(self, address: TronAddress) -> Result:
        rows = self._db.execute(
            "SELECT asset, amount FROM balances WHERE address=? ORDER BY asset", (str(address),)
        ).fetchall()
        nonce = self._db.execute(
            "SELECT next FROM nonces WHERE address=?", (str(address),)
        ).fetchone()
        return {
            "address": str(address),
            "next_nonce": str(nonce["next"] if nonce else 0),
            "balances": {asset_by_code(r["asset"]).uri: r["amount"] for r in rows},
        }

    def balance(self, address: TronAddress, asset: Asset) -> int:
        row = self._db.execute(
            "SELECT amount FROM balances WHERE address=? AND asset=?", (str(address), asset.code)
        ).fetchone()
        return int(row["amount"]) if row else 0

    def channel(self, cid: bytes) -> Result:
        return _channel_view(self._channel_row(cid))

    def channels(self, address: TronAddress) -> list[Result]:
        rows = self._db.execute(
            "SELECT * FROM channels WHERE payer=? OR payee=? ORDER BY opened_at",
            (str(address), str(address)),
        ).fetchall()
        return [_channel_view(r) for r in rows]

    def history(self, address: TronAddress, limit: int) -> list[Result]:
        rows = self._db.execute(
            "SELECT * FROM events WHERE address=? OR counterparty=? ORDER BY id DESC LIMIT ?",
            (str(address), str(address), limit),
        ).fetchall()
        return [
            {
                "id": r["id"], "at": r["at"], "kind": r["kind"], "address": r["address"],
                "counterparty": r["counterparty"], "channel_id": r["channel_id"],
                "asset": asset_by_code(r["asset"]).uri, "amount": r["amount"],
            }
            for r in rows
        ]  # fmt: skip

    def totals(self) -> dict[str, str]:
        """Money by where it sits; minted must equal balances + open channel funds."""
        minted = sum(
            int(r[0]) for r in self._db.execute("SELECT amount FROM events WHERE kind='mint'")
        )
        balances = sum(int(r[0]) for r in self._db.execute("SELECT amount FROM balances"))
        held = sum(
            int(r["deposit"]) - int(r["redeemed"])
            for r in self._db.execute("SELECT deposit, redeemed FROM channels WHERE status='open'")
        )
        return {"minted": str(minted), "balances": str(balances), "in_channels": str(held)}

    # -- internals -------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._crash("before-commit")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._crash("after-commit")

    def _use_nonce(self, address: TronAddress, nonce: int) -> None:
        row = self._db.execute(
            "SELECT next FROM nonces WHERE address=?", (str(address),)
        ).fetchone()
        expected = row["next"] if row else 0
        if nonce != expected:
            raise conflict(
                "bad_nonce",
                f"nonce {nonce} for {address} is {'used' if nonce < expected else 'ahead'}; "
                f"next is {expected}",
            )
        self._db.execute(
            "INSERT INTO nonces VALUES (?, ?) "
            "ON CONFLICT(address) DO UPDATE SET next=excluded.next",
            (str(address), expected + 1),
        )

    def _open(self, op: OpenChannel, now: int) -> Result:
        if not now < op.expires_at <= MAX_EXPIRY:
            raise bad_request("channel expiry must be in the future, and before year 10000")
        cid = op.channel_id(self.domain)
        if self._db.execute("SELECT 1 FROM channels WHERE channel_id=?", (cid.hex(),)).fetchone():
            raise conflict("channel_exists", "a channel with this salt already exists")
        self._spend(op.payer, op.asset, op.deposit)
        self._db.execute(
            "INSERT INTO channels VALUES (?, ?, ?, ?, ?, '0', ?, ?, 'open')",
            (cid.hex(), str(op.payer), str(op.payee), op.asset.code, str(op.deposit),
             op.expires_at, now),
        )  # fmt: skip
        self._event(now, "open", op.payer, op.payee, cid, op.asset, op.deposit)
        return {"channel": self.channel(cid)}

    def _top_up(self, op: TopUpChannel, now: int) -> Result:
        ch = self._channel_row(op.channel_id)
        if ch["payer"] != str(op.payer):
            raise WrongBinding("only the channel's payer can top it up")
        if ch["status"] != "open" or now >= ch["expires_at"]:
            raise conflict("channel_expired", "channel has expired; open a new one")
        if not ch["expires_at"] <= op.expires_at <= MAX_EXPIRY:
            raise bad_request("a top-up cannot shorten the channel's expiry (or pass year 9999)")
        asset = asset_by_code(ch["asset"])
        self._spend(op.payer, asset, op.amount)
        self._db.execute(
            "UPDATE channels SET deposit=?, expires_at=? WHERE channel_id=?",
            (str(int(ch["deposit"]) + op.amount), op.expires_at, op.channel_id.hex()),
        )
        self._event(now, "topup", op.payer, ch["payee"], op.channel_id, asset, op.amount)
        return {"channel": self.channel(op.channel_id)}

    def _reclaim(self, op: ReclaimChannel, now: int) -> Result:
        ch = self._channel_row(op.channel_id)
        if ch["payer"] != str(op.payer):
            raise WrongBinding("only the channel's payer can reclaim it")
        if ch["status"] != "open":
            raise conflict("already_reclaimed", "channel was already reclaimed")
        if now < ch["expires_at"]:
            raise conflict(
                "not_expired", f"channel expires at {ch['expires_at']}; reclaim is possible after"
            )
        asset = asset_by_code(ch["asset"])
        rest = int(ch["deposit"]) - int(ch["redeemed"])
        self._add(op.payer, asset, rest)
        self._db.execute(
            "UPDATE channels SET status='reclaimed' WHERE channel_id=?", (op.channel_id.hex(),)
        )
        self._event(now, "reclaim", op.payer, ch["payee"], op.channel_id, asset, rest)
        return {"channel": self.channel(op.channel_id), "returned": str(rest)}

    def _channel_row(self, cid: bytes) -> sqlite3.Row:
        row = self._db.execute("SELECT * FROM channels WHERE channel_id=?", (cid.hex(),)).fetchone()
        if row is None:
            raise not_found(f"channel {cid.hex()}")
        return row  # type: ignore[no-any-return]

    def _spend(self, address: TronAddress, asset: Asset, amount: int) -> None:
        have = self.balance(address, asset)
        if have < amount:
            raise insufficient_funds(
                format_amount(have, asset), format_amount(amount, asset),
                format_amount(amount - have, asset),
            )  # fmt: skip
        self._set(address, asset, have - amount)

    def _add(self, address: TronAddress, asset: Asset, amount: int) -> None:
        self._set(address, asset, self.balance(address, asset) + amount)

    def _set(self, address: TronAddress, asset: Asset, amount: int) -> None:
        self._db.execute(
            "INSERT INTO balances VALUES (?, ?, ?) "
            "ON CONFLICT(address, asset) DO UPDATE SET amount=excluded.amount",
            (str(address), asset.code, str(amount)),
        )

    def _event(
        self, now: int, kind: str, address: TronAddress, counterparty: TronAddress | str | None,
        cid: bytes | None, asset: Asset, amount: int,
    ) -> None:  # fmt: skip
        self._db.execute(
            "INSERT INTO events (at, kind, address, counterparty, channel_id, asset, amount) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (now, kind, str(address), None if counterparty is None else str(counterparty),
             None if cid is None else cid.hex(), asset.code, str(amount)),
        )  # fmt: skip


def _channel_view(row: sqlite3.Row) -> Result:
    return {
        "channel_id": row["channel_id"], "payer": row["payer"], "payee": row["payee"],
        "asset": asset_by_code(row["asset"]).uri, "deposit": row["deposit"],
        "redeemed": row["redeemed"], "expires_at": row["expires_at"],
        "opened_at": row["opened_at"], "status": row["status"],
    }  # fmt: skip
