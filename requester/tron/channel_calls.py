"""The calls that move money on the channel contract, each one journaled intent.

A payer's :class:`SignedOp` (what the SDK records before sending) is the
intent ``op:<op_hash>``; its parameters are fixed in the journal the first time
it is seen (a top-up's TARGET deposit among them), and :class:`TxSender`
carries it onto the chain exactly once. ``approve`` before an open or top-up is
an intent of its own (``op:<op_hash>:approve``). Redeems are intents per
(channel, amount); reclaims and close requests per channel, followed while
unfinished. Every transaction is tried as a constant call first, so a call the
contract would refuse is refused with its code before any energy is spent.
"""

from __future__ import annotations

import secrets
from typing import Any

from tronpy import AsyncTron
from tronpy.async_contract import AsyncContract
from tronpy.async_tron import AsyncTransactionBuilder

from requester.ledger_client import LedgerError
from requester.protocol import (
    OpenChannel,
    PayerKey,
    ProtocolError,
    ReclaimChannel,
    SignedOp,
    TopUpChannel,
    TronAddress,
    Voucher,
    format_amount,
)
from requester.tron.chain_reader import ChainReader
from requester.tron.channel_contract import receipt_refusal
from requester.tron.tx_journal import TxJournal
from requester.tron.tx_sender import Make, TxSender

TRC20_APPROVE = [{
    "type": "function", "name": "approve", "stateMutability": "nonpayable",
    "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
    "outputs": [{"name": "", "type": "bool"}],
}]  # fmt: skip


class ChannelCalls:
    def __init__(self, client: AsyncTron, chain: ChainReader, journal: TxJournal,
                 fee_limit: int) -> None:  # fmt: skip
        self._client, self._chain, self._journal = client, chain, journal
        self._fee_limit = fee_limit
        self._sender = TxSender(client, journal, fee_limit)

    async def apply(self, key: PayerKey | None, call: SignedOp) -> dict[str, Any]:
        """Apply a payer's signed call once; the answer the embedded ledger would give."""
        domain = (await self._chain.deployment()).domain
        try:
            call.verify(domain)
        except ProtocolError as exc:
            raise LedgerError(exc.status, exc.code, exc.message) from exc
        intent = "op:" + call.op_hash(domain).hex()
        op = call.op
        if isinstance(op, OpenChannel):
            return await self._open(key, call, op, intent)
        if isinstance(op, TopUpChannel):
            return await self._top_up(key, call, op, intent)
        return await self._reclaim(key, call, op, intent)

    async def _open(self, key: PayerKey | None, call: SignedOp, op: OpenChannel,
                    intent: str) -> dict[str, Any]:  # fmt: skip
        d = await self._chain.deployment()
        if op.asset != d.asset:
            raise LedgerError(400, "wrong_binding", f"this contract holds {d.asset.uri}")
        cid = op.channel_id(d.domain)
        entry = self._journal.begin(intent, "open", op.payer.base58(), cid,
                                    {"op": call.to_json()})  # fmt: skip

        async def make() -> AsyncTransactionBuilder | None:
            found = await self._chain.channel(cid)
            if found is not None:  # the id binds payer, payee and this call's salt
                if (found["payer"], found["payee"]) != (str(op.payer), str(op.payee)):
                    raise LedgerError(409, "channel_exists", f"channel {cid.hex()} exists")
                return None  # this open applied (the answer was lost, or another sent it)
            assert key is not None
            args = [op.payee, op.deposit, op.expires_at, op.salt]
            await self._approve(key, intent, cid, op.deposit, ("open", args))
            return await self._prepared(op.payer, "open", args, "open")

        if entry.state != "confirmed":
            try:
                await self._carry(intent, key, make, "open")
            except LedgerError as exc:  # another process of this wallet sent it first
                if exc.code != "channel_exists" or await self._chain.channel(cid) is None:
                    raise
                self._journal.confirmed(intent, None)
        return {"channel": await self.view(cid), "replayed": entry.state == "confirmed"}

    async def _top_up(self, key: PayerKey | None, call: SignedOp, op: TopUpChannel,
                      intent: str) -> dict[str, Any]:  # fmt: skip
        entry = self._journal.get(intent)
        if entry is None:  # the target is fixed now, once: a retry never charges twice
            view = await self.view(op.channel_id)
            if view["payer"] != op.payer.base58():
                raise LedgerError(400, "wrong_binding", f"{op.payer} is not the payer of "
                                  f"channel {op.channel_id.hex()}")  # fmt: skip
            target = int(view["deposit"]) + op.amount
            entry = self._journal.begin(intent, "topup", op.payer.base58(), op.channel_id,
                                        {"op": call.to_json(), "target": str(target)})  # fmt: skip
        target = int(entry.params["target"])

        async def make() -> AsyncTransactionBuilder:
            assert key is not None
            missing = target - int((await self.view(op.channel_id))["deposit"])
            args = [op.channel_id, target, op.expires_at]
            await self._approve(key, intent, op.channel_id, missing, ("topUpTo", args))
            return await self._prepared(op.payer, "topUpTo", args, "topup")

        if entry.state != "confirmed":
            await self._carry(intent, key, make, "top-up")
        return {"channel": await self.view(op.channel_id),
                "replayed": entry.state == "confirmed"}  # fmt: skip

    async def _reclaim(self, key: PayerKey | None, call: SignedOp, op: ReclaimChannel,
                       intent: str) -> dict[str, Any]:  # fmt: skip
        entry = self._journal.begin(intent, "reclaim", op.payer.base58(), op.channel_id,
                                    {"op": call.to_json()})  # fmt: skip

        async def make() -> AsyncTransactionBuilder:
            return await self._prepared(op.payer, "reclaim", [op.channel_id], "reclaim")

        if entry.state != "confirmed":
            await self._carry(intent, key, make, "reclaim")
        view = await self.view(op.channel_id)
        returned = int(view["deposit"]) - int(view["redeemed"])
        return {"channel": view, "returned": str(returned),
                "replayed": entry.state == "confirmed"}  # fmt: skip

    def unfinished_reclaim(self, payer: TronAddress, channel_id: bytes) -> SignedOp | None:
        """A reclaim of the channel by ``payer`` that a crash left unfinished."""
        for left in self._journal.unfinished("reclaim", channel_id):
            if left.signer == payer.base58():
                return SignedOp.from_json(left.params["op"])
        return None

    async def request_close(self, key: PayerKey, channel_id: bytes) -> dict[str, Any]:
        left = self._journal.unfinished("close", channel_id)
        intent = left[0].intent if left else f"close:{channel_id.hex()}:{secrets.token_hex(8)}"
        self._journal.begin(intent, "close", key.address.base58(), channel_id, {})

        async def make() -> AsyncTransactionBuilder:
            return await self._prepared(key.address, "requestClose", [channel_id], "close")

        await self._carry(intent, key, make, "requestClose")
        return {"channel": await self.view(channel_id), "replayed": False}

    async def redeem(self, key: PayerKey | None, voucher: Voucher) -> dict[str, Any]:
        """Checked as the embedded ledger checks it (domain, channel, binding), then sent
        from ``key``'s account; the payee is paid what the voucher adds."""
        d = await self._chain.deployment()
        cid = voucher.channel_id
        if voucher.domain != d.domain:
            raise LedgerError(400, "wrong_binding", "voucher is for another ledger (chain id "
                              f"{voucher.domain.chain_id} or contract)")  # fmt: skip
        view = await self.view(cid)
        if (view["payer"], view["payee"], d.asset) != (
            voucher.payer.base58(), voucher.payee.base58(), voucher.asset,
        ):  # fmt: skip
            why = "voucher's payer, payee or asset differ from the channel's"
            raise LedgerError(400, "wrong_binding", why)
        if key is None:
            raise LedgerError(503, "no_signer", "redeeming on TRON needs a key to send from")
        intent = f"redeem:{cid.hex()}:{voucher.amount}"
        entry = self._journal.begin(intent, "redeem", key.address.base58(), cid,
                                    {"redeemed_before": view["redeemed"]})  # fmt: skip
        args = [cid, voucher.amount, voucher.signature]
        if entry.state == "confirmed":  # a replay: refused, as the embedded ledger does
            await self._dry_run(key.address, "redeem", args, "redeem")
            redeemed = format_amount(int(view["redeemed"]), d.asset)
            raise LedgerError(409, "already_redeemed", f"channel already redeemed up to {redeemed}")

        async def make() -> AsyncTransactionBuilder:
            return await self._prepared(key.address, "redeem", args, "redeem")

        await self._carry(intent, key, make, "redeem")
        credited = voucher.amount - int(entry.params["redeemed_before"])
        return {"channel": await self.view(cid), "credited": str(credited)}

    async def view(self, channel_id: bytes) -> dict[str, Any]:
        view = await self._chain.channel(channel_id)
        if view is None:
            raise LedgerError(404, "not_found", f"no channel {channel_id.hex()}")
        return view

    async def _approve(self, key: PayerKey, intent: str, channel_id: bytes, amount: int,
                       then: tuple[str, list[Any]]) -> None:  # fmt: skip
        """Let the contract pull ``amount`` from the payer (its own journaled transaction)
        for the call ``then`` (name, arguments), unless it may already. The call is tried
        first: one the contract would refuse for any reason but the allowance is refused
        before an approve spends energy, and a payer without ``amount`` is refused as the
        embedded ledger refuses it."""
        if amount <= 0 or await self._chain.allowance(key.address) >= amount:
            return
        try:
            await self._dry_run(key.address, *then, then[0])
        except LedgerError as exc:
            if exc.code != "insufficient_funds":
                raise
        d = await self._chain.deployment()
        balance = await self._chain.token_balance(key.address)
        if balance < amount:
            raise LedgerError(402, "insufficient_funds", f"balance is "
                              f"{format_amount(balance, d.asset)}, the call needs "
                              f"{format_amount(amount, d.asset)} "
                              f"({format_amount(amount - balance, d.asset)} missing)")  # fmt: skip
        entry = self._journal.begin(f"{intent}:approve", "approve", key.address.base58(),
                                    channel_id, {"amount": str(amount)})  # fmt: skip
        if entry.state == "confirmed":  # its allowance was spent since: approve again
            self._journal.renew(entry.intent)

        async def make() -> AsyncTransactionBuilder:
            return await self._builder(d.token, TRC20_APPROVE, key.address, "approve",
                                       [d.contract, amount])  # fmt: skip

        await self._carry(entry.intent, key, make, "approve")

    async def _prepared(self, owner: TronAddress, name: str, args: list[Any],
                        doing: str) -> AsyncTransactionBuilder:  # fmt: skip
        """The builder of ``name(args)`` on the channel contract from ``owner``, after a dry
        run (which raises the refusal the contract would give)."""
        await self._dry_run(owner, name, args, doing)
        d = await self._chain.deployment()
        return await self._builder(d.contract, self._chain.abi.abi, owner, name, args)

    async def _dry_run(self, owner: TronAddress, name: str, args: list[Any], doing: str) -> None:
        d = await self._chain.deployment()
        abi = self._chain.abi.abi
        entry = next(e for e in abi if e.get("type") == "function" and e.get("name") == name)
        types = [i["type"] for i in entry["inputs"]]
        signature = f"{name}({','.join(types)})"
        await self._chain.dry_run(owner, d.contract, signature, types, args, doing)

    async def _builder(self, at: TronAddress, abi: list[dict[str, Any]], owner: TronAddress,
                       name: str, args: list[Any]) -> AsyncTransactionBuilder:  # fmt: skip
        contract = AsyncContract(at.base58(), abi=abi, client=self._client)
        method = contract.functions[name].with_owner(owner.base58())
        shown = [a.base58() if isinstance(a, TronAddress) else a for a in args]
        builder: AsyncTransactionBuilder = await method(*shown)
        return builder

    async def _carry(self, intent: str, key: PayerKey | None, make: Make,
                     doing: str) -> dict[str, Any] | None:  # fmt: skip
        def refusal(receipt: dict[str, Any]) -> LedgerError:
            return receipt_refusal(self._chain.abi, receipt, doing, self._fee_limit)

        return await self._sender.carry(intent, key, make, doing, refusal)
