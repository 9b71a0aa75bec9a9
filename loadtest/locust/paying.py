"""The ``paying`` scenario: an app that pays an edge itself, with its own key and channel.

Its ledger calls, quotes, vouchers and chunk checks are the SDK's own sans-IO code
(``requester.protocol``, :func:`requester.recorded_calls.view_terms`), so the load is made
of real, signed payments; locust's client sends them (no asyncio inside a locust process).
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import secrets
import time
from typing import Any, ClassVar

import gevent.lock  # type: ignore[import-untyped]
from locust import between, task

from loadtest.locust.atlas_user import AtlasUser, Targets, setting, think_time
from requester.errors import AtlasError
from requester.protocol import (
    BTT_LOCAL,
    ChannelExpired,
    ContentVerifier,
    DepositExceeded,
    ManifestHead,
    OpenChannel,
    PayerChannel,
    PayerKey,
    PaymentDomain,
    ProtocolError,
    Quote,
    SendVoucher,
    b64url_decode,
    sign_op,
)
from requester.protocol.manifest import MAX_HEAD_BYTES, STATEMENT_SIZE
from requester.protocol.quote import QUOTE_SIZE
from requester.recorded_calls import view_terms

PAID_CONTENT = "/bytes/2097152"
"""What the paying users buy: 8 chunks of 256 KiB (binary, so sent without zstd)."""
CHUNKS = 8
IDENTITY = {"Accept-Encoding": "identity"}
FAUCET_BTT = 100
CHANNEL_DEPOSIT = 10 * BTT_LOCAL.one
"""One paying user's channel: 40 000 chunks of 256 KiB at the default 0.001 BTT/MiB."""
CHANNEL_LIFETIME = 3600


class SetupFailed(Exception):
    """A paying user could not get its content, quote or channel (already recorded)."""


class PayingEdgeUser(AtlasUser):
    """Faucet, the 402 quote, its own channel on the ledger, then a voucher per chunk."""

    scenario = "paying"
    weight = 2
    wait_time = between(*think_time("ATLAS_LT_THINK_PAYING", (0.2, 1.0)))
    verify_every = int(setting("ATLAS_LT_VERIFY_EVERY", 8))
    """Every Nth chunk's signed statement and SHA-256 are checked, the others by length."""
    edge_index: ClassVar[int | None] = None
    _spread = itertools.count()
    _domain: ClassVar[PaymentDomain | None] = None
    _contents: ClassVar[dict[str, tuple[str, ManifestHead]]] = {}
    _content_lock = gevent.lock.Semaphore()

    def base_url(self, t: Targets) -> str:
        index = self.edge_index
        if index is None:
            index = int(setting("ATLAS_LT_EDGE", -1))
        return t.edges[index if index >= 0 else next(self._spread) % len(t.edges)]

    def on_start(self) -> None:
        self.key = PayerKey.generate()
        self.channel: PayerChannel | None = None
        self.served = 0
        self.index = random.randrange(CHUNKS)

    def set_up(self) -> None:
        """Faucet, content, quote and channel; retried by the task until it succeeds."""
        if PayingEdgeUser._domain is None:
            info = self.json_call("GET", "/v1/info", "ledger info")
            contract = bytes.fromhex(str(info["contract"]))
            PayingEdgeUser._domain = PaymentDomain(int(info["chain_id"]), contract)
        self.domain = PayingEdgeUser._domain
        faucet = {"address": str(self.key.address), "amount": str(FAUCET_BTT),
                  "request_id": secrets.token_hex(16)}  # fmt: skip
        self.json_call("POST", "/v1/faucet", "ledger faucet", faucet)
        self.content_id, head = self.content()
        self.verifier = ContentVerifier(head)
        self.quote = self.first_quote()
        self.price = self.quote.chunk_price(head.chunk_size)
        self.open_channel()

    def json_call(self, method: str, path: str, what: str, body: dict[str, str] | None = None,
                  at: str | None = None) -> dict[str, Any]:  # fmt: skip
        """A JSON call to the ledger (or to ``at``); SetupFailed unless it answers a 200 object."""
        url = f"{self.targets.ledger if at is None else at}{path}"
        with self.client.request(method, url, json=body, name=self.name(what),
                                 catch_response=True) as resp:  # fmt: skip
            try:
                data = json.loads(resp.content or b"null")
            except ValueError:
                data = None
            if resp.status_code != 200 or not isinstance(data, dict):
                resp.failure(f"HTTP {resp.status_code}: {(resp.content or b'')[:200]!r}")
                raise SetupFailed(f"{what}: HTTP {resp.status_code}")
            resp.success()
            return data

    def content(self) -> tuple[str, ManifestHead]:
        """The content id and head of ``PAID_CONTENT`` at this edge; fetched once per edge
        (the origin sends no freshness, so every ``/v1/fetch`` would be a new origin fetch)."""
        with self._content_lock:
            known = self._contents.get(self.host or "")
            if known is None:
                url = {"url": f"{self.targets.origin}{PAID_CONTENT}"}
                data = self.json_call("POST", "/v1/fetch", "edge fetch", url, at="")
                head = ManifestHead.decode(b64url_decode(data["head"], MAX_HEAD_BYTES, "head"))
                known = self._contents[self.host or ""] = (str(data["content_id"]), head)
            return known

    def chunk_path(self, index: int) -> str:
        return f"/v1/chunk/{self.content_id}/{index}"

    def first_quote(self) -> Quote:
        """Ask for a chunk without paying until the edge answers 402 with its quote (the
        client address's free allowance, shared by every user here, may serve a few)."""
        for _ in range(40):
            with self.client.get(self.chunk_path(self.index), name=self.name("chunk unpaid"),
                                 headers=IDENTITY, catch_response=True) as resp:  # fmt: skip
                if resp.status_code not in (200, 402):
                    resp.failure(f"HTTP {resp.status_code}, want 402 or 200")
                    raise SetupFailed(f"no quote: HTTP {resp.status_code}")
                resp.success()  # a 200 was served from the free allowance
                if resp.status_code == 402:
                    raw = resp.headers.get("Atlas-Quote") or ""
                    quote = Quote.decode(b64url_decode(raw, QUOTE_SIZE, "Atlas-Quote"))
                    if quote.content_id.hex() != self.content_id or quote.domain != self.domain:
                        raise SetupFailed("the quote is for another content or ledger")
                    return quote
                self.index = (self.index + 1) % CHUNKS
        raise SetupFailed("the edge never asked for payment")

    def open_channel(self) -> None:
        """A signed ``open`` call for a channel to the quote's payee, and its check."""
        account = self.json_call("GET", f"/v1/accounts/{self.key.address}", "ledger account")
        expires = int(time.time()) + CHANNEL_LIFETIME
        op = OpenChannel(self.key.address, self.quote.payee, BTT_LOCAL, CHANNEL_DEPOSIT, expires,
                         secrets.token_bytes(32), int(account["next_nonce"]))  # fmt: skip
        body = sign_op(self.key, self.domain, op).to_json()
        view = self.json_call("POST", "/v1/calls", "ledger open channel", body)["channel"]
        terms = view_terms(view, self.domain, op.channel_id(self.domain))
        if terms.deposit != CHANNEL_DEPOSIT or view.get("status") != "open":
            raise ValueError(f"ledger opened another channel: {str(view)[:200]}")
        self.channel = PayerChannel(terms, self.key)

    @task
    def buy_chunk(self) -> None:
        if self.channel is None:
            try:
                self.set_up()
            except (SetupFailed, AtlasError, KeyError, ValueError) as exc:
                logging.warning("paying user set-up failed: %s", exc)
                gevent.sleep(1.0)
                return
        assert self.channel is not None
        try:
            actions = self.channel.pay(self.price, int(time.time()))
        except (DepositExceeded, ChannelExpired):
            self.open_channel()
            return
        voucher = next(a.voucher for a in actions if isinstance(a, SendVoucher)).to_header()
        index, self.index = self.index, (self.index + 1) % CHUNKS
        with self.client.get(self.chunk_path(index), name=self.name("chunk"),
                             headers={"Atlas-Voucher": voucher, **IDENTITY},
                             catch_response=True) as resp:  # fmt: skip
            body = resp.content or b""
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {body[:160]!r}")
                if resp.status_code in (429, 503):  # as the edge asks: 5 s at most, 1 if unsaid
                    wait = resp.headers.get("Retry-After") or ""
                    gevent.sleep(min(5.0, float(wait)) if wait.isdigit() else 1.0)
            elif resp.headers.get("Atlas-Paid-By") not in ("voucher", "credit"):
                resp.failure(f"paid by {resp.headers.get('Atlas-Paid-By')!r}")
            elif problem := self.check_chunk(index, body, resp.headers.get("Atlas-Chunk") or ""):
                resp.failure(problem)
            else:
                resp.success()

    def check_chunk(self, index: int, body: bytes, statement: str) -> str | None:
        """What is wrong with a served chunk, if anything."""
        self.served += 1
        if not (self.verify_every and self.served % self.verify_every == 0):
            size = self.verifier.head.chunk_size
            return None if len(body) == size else f"chunk of {len(body)} bytes"
        try:
            raw = b64url_decode(statement, STATEMENT_SIZE, "Atlas-Chunk")
            signed = self.verifier.verify_chunk(raw, body)
        except ProtocolError as exc:
            return f"chunk {index} failed verification: {exc}"
        return None if signed.index == index else f"statement for chunk {signed.index}, not {index}"
