"""The three books a payment touches, read at rest, and the rules they must keep.

The edge's ``payments.sqlite3`` (best voucher, paid, consumed, redeemed per
channel), the payer's ``state.sqlite3`` (deposit and highest amount signed per
channel, and the opens and top-ups it sent without an answer yet) and the
ledger (channels and balances over its HTTP API). After any kill -9 and
restart:

- the ledger conserves money: minted == balances + what open channels hold;
- the edge holds no voucher the payer did not record first (paid <= issued),
  never served more than its durable vouchers pay for (delivered <= consumed
  <= paid), and never lost a voucher it served against (its paid only grows);
- nothing is credited twice: each channel's redeemed amount on the ledger is
  one the edge holds (redeemed <= paid) and the payee's balance is the sum of
  its channels' redeemed amounts;
- no channel is stranded: every channel the ledger holds for a payer is in the
  payer's book, or is an open it recorded before sending and settles at its
  next start.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from requester.ledger_client import LedgerClient, LedgerError
from requester.protocol import TronAddress, Voucher
from tests.ledger.support import totals


@dataclass(frozen=True)
class PayeeRow:
    """One channel in the edge's book."""

    best: int
    """Amount of the best voucher held (0 if none)."""
    voucher: bytes | None = field(repr=False)
    """That voucher, as the edge stored it."""
    paid: int
    consumed: int
    redeemed: int


@dataclass(frozen=True)
class PayerRow:
    """One channel in the payer's book."""

    payee: str
    deposit: int
    issued: int
    expires_at: int


def _rows(path: Path, query: str) -> list[sqlite3.Row]:
    assert path.exists(), f"no {path}"
    with closing(sqlite3.connect(path, timeout=10)) as db:
        db.row_factory = sqlite3.Row
        return db.execute(query).fetchall()


def payee_book(edge_dir: Path) -> dict[str, PayeeRow]:
    rows = _rows(
        edge_dir / "payments.sqlite3",
        "SELECT channel_id, best, paid, consumed, redeemed FROM channels",
    )
    return {
        r["channel_id"]: PayeeRow(
            Voucher.decode(r["best"]).amount if r["best"] else 0, r["best"],
            int(r["paid"]), int(r["consumed"]), int(r["redeemed"]),
        )
        for r in rows
    }  # fmt: skip


def payer_book(state: Path) -> dict[str, PayerRow]:
    rows = _rows(state, "SELECT channel_id, payee, deposit, issued, expires_at FROM channels")
    return {
        r["channel_id"]: PayerRow(r["payee"], int(r["deposit"]), int(r["issued"]),
                                  r["expires_at"])
        for r in rows
    }  # fmt: skip


@dataclass(frozen=True)
class PendingRow:
    """An open or top-up the payer recorded and sent, with no answer recorded yet."""

    kind: str
    channel_id: str
    amount: int
    """The open's deposit, or what the top-up adds."""


def payer_pending(state: Path) -> list[PendingRow]:
    rows = _rows(state, "SELECT channel_id, call FROM pending_calls")
    out = []
    for r in rows:
        call = json.loads(r["call"])
        amount = call["deposit"] if call["type"] == "open" else call["amount"]
        out.append(PendingRow(call["type"], r["channel_id"], int(amount)))
    return out


async def check_pending(ledger: LedgerClient, pending: Iterable[PendingRow]) -> None:
    """A pending open is on the ledger with the deposit it asked for, or not at all (it
    was cut off before the ledger applied it)."""
    for row in pending:
        if row.kind != "open":
            continue
        try:
            view = await ledger.channel(bytes.fromhex(row.channel_id))
        except LedgerError as exc:
            assert exc.status == 404, exc
            continue
        assert int(view["deposit"]) == row.amount, (row, view)


def check_payee(
    edge: Mapping[str, PayeeRow], issued: Mapping[str, int], delivered: Mapping[str, int],
    before: Mapping[str, PayeeRow] | None = None,
) -> None:  # fmt: skip
    """The edge's book against what the payer signed and what it received."""
    for cid, row in edge.items():
        assert row.best == row.paid, (cid, row)
        assert row.redeemed <= row.paid and row.consumed <= row.paid, (cid, row)
        if cid in issued:
            assert row.paid <= issued[cid], (
                f"{cid}: edge holds {row.paid}, payer signed {issued[cid]}"
            )
        if before is not None and cid in before:
            assert row.paid >= before[cid].paid, f"{cid}: accepted voucher lost: {before[cid]}"
            assert row.consumed >= before[cid].consumed, (cid, before[cid], row)
    for cid, value in delivered.items():
        consumed = edge[cid].consumed if cid in edge else 0
        assert value <= consumed, f"{cid}: served {value} with only {consumed} durably paid"


async def check_ledger(
    ledger: LedgerClient, payee: TronAddress, edge: Mapping[str, PayeeRow], *,
    settled: bool = False,
) -> int:  # fmt: skip
    """Money conserved, each channel redeemed at most to the edge's best voucher and
    credited once; with ``settled``, every voucher the edge holds is redeemed.
    Returns what the payee was credited in all."""
    await totals(ledger)  # asserts minted == balances + in_channels
    channels = {
        c["channel_id"]: c for c in await ledger.channels(payee) if c["payee"] == str(payee)
    }
    for cid, row in edge.items():
        on_ledger = int(channels[cid]["redeemed"]) if cid in channels else 0
        assert row.redeemed <= on_ledger <= row.paid, f"{cid}: ledger {on_ledger}, edge {row}"
        if settled:
            assert row.redeemed == on_ledger == row.paid, f"{cid}: ledger {on_ledger}, edge {row}"
    credited = sum(int(c["redeemed"]) for c in channels.values())
    assert await ledger.balance(payee) == credited, "the payee was credited twice"
    return credited


async def unknown_channels(
    ledger: LedgerClient, payer: TronAddress, known: Iterable[str]
) -> dict[str, int]:
    """Open channels the ledger holds for ``payer`` that are not in ``known`` (its book,
    and the opens it recorded as pending), with their deposits: money the wallet would
    never spend or reclaim."""
    mine = set(known)
    return {
        c["channel_id"]: int(c["deposit"])
        for c in await ledger.channels(payer)
        if c["payer"] == str(payer) and c["status"] == "open" and c["channel_id"] not in mine
    }
