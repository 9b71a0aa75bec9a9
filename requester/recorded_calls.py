"""Channel opens and top-ups recorded before they are sent, and settled after a crash.

The payer records each open and top-up, signed, before sending it
(:meth:`RecordedCalls.send`, :meth:`PayerStore.add_pending`), and turns the
record into its channel, or its raised deposit, when the answer comes. A kill
-9 between the ledger applying the call and the payer recording the answer
(of the payer, or of the ledger before it answered) leaves the record, never a
channel the wallet does not know. :func:`settle_pending` settles such records
before a :class:`ChannelManager` first pays or makes room, and in
``atlas channel list`` and ``close``:

- an open whose channel the ledger holds is recorded as the payer's channel;
- any other call is sent again exactly as it was signed: the ledger answers a
  call it applied from its record, applies one it never got if its nonce is
  still the next, and refuses one whose nonce another call took. An answer is
  recorded; a refusal drops the record (the call changed nothing, and never
  will);
- if the ledger cannot be reached, the record stays for the next time.

Sending again, rather than only reading, also settles a call that another
process of the same wallet still has in flight, whichever answer comes first.
On TRON (``requester/tron/ledger.py``) sending again follows the transaction
journaled for the call (the same bytes, until they expire) rather than making
another, and a call never signed is built then.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from requester.failpoints import reached
from requester.ledger_api import Ledger
from requester.ledger_client import LedgerError, Record
from requester.payer_store import PayerStore, PendingCall
from requester.protocol import (
    ASSETS,
    ChannelTerms,
    OpenChannel,
    PaymentDomain,
    ProtocolError,
    SignedOp,
    TronAddress,
)


@dataclass(frozen=True)
class Settled:
    """What became of one pending call."""

    call: PendingCall
    terms: ChannelTerms | None
    """The channel as the ledger holds it now; None if the call was dropped or is left."""
    left: str | None = None
    """Why the call is still pending (the ledger unreachable); None once settled."""


class RecordedCalls:
    """One payer's opens and top-ups on one ledger: each recorded, then sent."""

    def __init__(self, store: PayerStore, ledger: Ledger) -> None:
        self._store, self._ledger = store, ledger
        self._in_flight: set[str] = set()
        """Op hashes of the calls sent from here and not answered yet: not to settle."""

    async def send(
        self, payee: TronAddress, now: int, send: Callable[[Record], Awaitable[dict[str, Any]]]
    ) -> tuple[PendingCall, Any]:
        """Send a call through ``send``, recorded as pending before it leaves; a call the
        ledger refused is forgotten. Returns the record and the channel the ledger
        answered with."""
        recorded: list[PendingCall] = []

        def record(call: SignedOp) -> None:
            recorded.append(self._store.add_pending(self._ledger.url, domain, call, payee, now))
            self._in_flight.add(recorded[0].op_hash)
            if isinstance(call.op, OpenChannel):
                reached("payer.open_requested")
            else:
                reached("payer.topup_requested")

        domain = await self._ledger.domain()
        try:
            answer = await send(record)
        except LedgerError as exc:
            if recorded and exc.refused:
                self._store.drop_pending(recorded[0].op_hash)
            raise
        finally:
            if recorded:
                self._in_flight.discard(recorded[0].op_hash)
        return recorded[0], answer.get("channel")

    async def settle(self, now: int) -> list[Settled]:
        """Settle what a crash left pending, except the calls in flight from here."""
        return await settle_pending(self._store, self._ledger, now, self._in_flight)


def view_terms(view: Any, domain: PaymentDomain, channel_id: bytes) -> ChannelTerms:
    """The ledger's view of ``channel_id`` as terms, checked: a view of another channel,
    or one that does not parse, is a bad answer (:class:`LedgerError` 502)."""
    try:
        asset = next(a for a in ASSETS.values() if a.uri == view["asset"])
        terms = ChannelTerms(
            domain, bytes.fromhex(view["channel_id"]), TronAddress.parse(view["payer"]),
            TronAddress.parse(view["payee"]), asset, int(view["deposit"]),
            int(view["expires_at"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, StopIteration, ProtocolError) as exc:
        raise LedgerError(502, "bad_ledger_response", f"unreadable channel view: {exc}") from exc
    if terms.channel_id != channel_id:
        raise LedgerError(
            502, "bad_ledger_response",
            f"asked about channel {channel_id.hex()}, answered about {terms.channel_id.hex()}",
        )  # fmt: skip
    return terms


async def settle_pending(
    store: PayerStore, ledger: Ledger, now: int, skip: Collection[str] = ()
) -> list[Settled]:
    """Settle the calls ``store`` holds for ``ledger``'s domain (whatever URL they were sent
    to, as a channel is spent on whichever URL reaches its ledger), except those in
    ``skip`` (op hashes of calls this process has in flight)."""
    calls = [call for call in store.pending() if call.op_hash not in skip]
    if not calls:
        return []
    try:
        domain = await ledger.domain()
    except LedgerError as exc:
        return [Settled(call, None, f"{exc.code}: {exc.detail}") for call in calls]
    done = []
    for call in calls:
        if call.domain != domain:
            continue
        try:
            done.append(Settled(call, await _settle(store, ledger, call, now)))
        except LedgerError as exc:
            done.append(Settled(call, None, f"{exc.code}: {exc.detail}"))
    return done


async def _settle(store: PayerStore, ledger: Ledger, call: PendingCall,
                  now: int) -> ChannelTerms | None:  # fmt: skip
    view: Any = await _channel(ledger, call) if call.kind == "open" else None
    if view is None:
        try:
            view = (await ledger.send(call.call)).get("channel")
        except LedgerError as exc:
            if not exc.refused:
                raise
            store.drop_pending(call.op_hash)
            return None
    terms = view_terms(view, call.domain, call.channel_id)
    if call.kind == "open":
        opened = view.get("opened_at")
        store.add(ledger.url, terms, opened if isinstance(opened, int) else now,
                  settles=call.op_hash, status="open" if view.get("status") == "open"
                  else "reclaimed")  # fmt: skip
    else:
        store.update_terms(terms, settles=call.op_hash)
    return terms


async def _channel(ledger: Ledger, call: PendingCall) -> Any:
    """The ledger's view of the channel ``call`` opens, or None if it holds none."""
    try:
        return await ledger.channel(call.channel_id)
    except LedgerError as exc:
        if exc.status == 404:
            return None
        raise
