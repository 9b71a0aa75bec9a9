"""Plain helpers for the locust scenarios: targets, ledger calls, vouchers, statistics.

Nothing here imports locust or gevent, and nothing does I/O except reading the
targets file: the locustfiles send what these functions build with locust's own
HTTP client (gevent), so no asyncio runs inside a locust process. The ledger
and voucher messages come from the protocol core (``requester.protocol``), the
same code the SDK uses, so the load is made of real, signed payments.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from requester.protocol import (
    BTT_LOCAL,
    ChannelTerms,
    OpenChannel,
    PayerChannel,
    PayerKey,
    PaymentDomain,
    SendVoucher,
    TronAddress,
    format_amount,
    sign_op,
)

MIB = 1 << 20
VIDEO_SIZE = 20 * MIB
"""``/site/video.bin`` of ``tests/origin_server.py``."""
FAUCET_BTT = 100
CHANNEL_DEPOSIT = 10 * BTT_LOCAL.one
"""One paying user's channel: 40 000 chunks of 256 KiB at the default 0.001 BTT/MiB."""
CHANNEL_LIFETIME = 3600


@dataclass(frozen=True, slots=True)
class Targets:
    """Where the system under test listens: ``atlas up``'s JSON line plus the origin."""

    proxy: str
    api: str
    api_token: str
    edges: tuple[str, ...]
    ledger: str
    origin: str

    @property
    def proxy_address(self) -> tuple[str, int]:
        parts = urlsplit(self.proxy)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"proxy URL without host and port: {self.proxy}")
        return parts.hostname, parts.port


def load_targets(up_json: str, origin: str) -> Targets:
    """``up_json`` is the path of a file holding ``atlas up``'s line, or the line itself."""
    if not up_json:
        raise ValueError("set ATLAS_UP_JSON (or --atlas-up-json) to atlas up's JSON line or file")
    if not origin:
        raise ValueError("set ATLAS_ORIGIN (or --atlas-origin) to the test origin's URL")
    text = up_json if up_json.lstrip().startswith("{") else Path(up_json).read_text("utf-8")
    up: dict[str, Any] = json.loads(text)
    return Targets(
        proxy=str(up["proxy"]).rstrip("/"),
        api=str(up["api"]).rstrip("/"),
        api_token=str(up["api_token"]),
        edges=tuple(str(e).rstrip("/") for e in up["edges"]),
        ledger=str(up["ledger"]).rstrip("/"),
        origin=origin.rstrip("/"),
    )


def env_float_pair(name: str, default: tuple[float, float]) -> tuple[float, float]:
    """``NAME="a,b"`` (or ``"a"``) from the environment: a think-time range in seconds."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    low, _, high = raw.partition(",")
    a = float(low)
    b = float(high) if high else a
    if not 0 <= a <= b:
        raise ValueError(f"{name}={raw!r}: want 0 <= a <= b")
    return a, b


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def pattern(offset: int, length: int) -> bytes:
    """Bytes ``offset .. offset+length`` of the origin's deterministic stream (``/bytes``,
    ``/site/video.bin``); cheap for the few bytes a load test compares."""
    out = bytearray()
    block, skip = divmod(offset, 32)
    while len(out) < length + skip:
        out += hashlib.sha256(block.to_bytes(8, "big")).digest()
        block += 1
    return bytes(out[skip : skip + length])


# --- the ledger: faucet and channel opening, as JSON bodies -----------------------------------


def domain_of(info: dict[str, Any]) -> PaymentDomain:
    """The payment domain from the ledger's ``GET /v1/info``."""
    return PaymentDomain(int(info["chain_id"]), bytes.fromhex(str(info["contract"])))


def faucet_body(address: TronAddress, btt: int = FAUCET_BTT) -> dict[str, str]:
    return {"address": str(address), "amount": str(btt), "request_id": secrets.token_hex(16)}


@dataclass(frozen=True, slots=True)
class ChannelRequest:
    """A signed ``open`` call and what the payer needs once the ledger applied it."""

    body: dict[str, str]
    terms: ChannelTerms


def open_channel_call(
    key: PayerKey, domain: PaymentDomain, payee: TronAddress, nonce: int, now: int,
    deposit: int = CHANNEL_DEPOSIT, lifetime: int = CHANNEL_LIFETIME,
) -> ChannelRequest:  # fmt: skip
    """``POST {ledger}/v1/calls`` body opening a channel from ``key`` to ``payee``."""
    expires = now + lifetime
    op = OpenChannel(
        key.address, payee, BTT_LOCAL, deposit, expires, secrets.token_bytes(32), nonce
    )
    terms = ChannelTerms(domain, op.channel_id(domain), key.address, payee, BTT_LOCAL, deposit,
                         expires)  # fmt: skip
    return ChannelRequest(sign_op(key, domain, op).to_json(), terms)


def check_opened(answer: dict[str, Any], request: ChannelRequest) -> None:
    """Raise unless the ledger's answer is the channel that was asked for."""
    view = answer.get("channel")
    if not isinstance(view, dict):
        raise ValueError(f"ledger answer without a channel: {str(answer)[:200]}")
    if view.get("channel_id") != request.terms.channel_id.hex() or view.get("status") != "open":
        raise ValueError(f"ledger opened another channel: {str(view)[:200]}")
    if int(view.get("deposit", "0")) != request.terms.deposit:
        raise ValueError(f"deposit {view.get('deposit')} != {request.terms.deposit}")


def next_voucher(channel: PayerChannel, amount: int, now: int) -> str:
    """The ``Atlas-Voucher`` header raising ``channel``'s total by ``amount`` (cumulative)."""
    for action in channel.pay(amount, now):
        if isinstance(action, SendVoucher):
            return action.voucher.to_header()
    raise AssertionError("PayerChannel.pay returned no voucher to send")


def btt(amount: int) -> str:
    return format_amount(amount, BTT_LOCAL)


# --- statistics per scenario ------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def failure_kind(status: int, retry_after: bool, exception: BaseException | None) -> str:
    """How a failed request failed: ``shed`` (429/503 with Retry-After: the right answer to
    overload), ``timeout``, ``connection`` or ``http <status>``/``check``."""
    if status in (429, 503) and retry_after:
        return "shed"
    if exception is not None:
        name = type(exception).__name__.lower()
        text = str(exception).lower()
        if "timeout" in name or "timed out" in text or "timeout" in text:
            return "timeout"
        if status == 0:
            return "connection"
    if status >= 400:
        return f"http {status}"
    return "check"


@dataclass
class ScenarioStats:
    """Response times and failures per scenario (the request name's prefix before ``:``)."""

    times: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, Counter[str]] = field(default_factory=dict)
    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    bytes_in: Counter[str] = field(default_factory=Counter)

    def record(self, name: str, response_time: float, length: int, status: int,
               retry_after: bool, exception: BaseException | None) -> None:  # fmt: skip
        scenario = name.split(":", 1)[0].strip() or "other"
        self.times.setdefault(scenario, []).append(float(response_time))
        self.statuses.setdefault(scenario, Counter())[str(status)] += 1
        self.bytes_in[scenario] += max(0, int(length or 0))
        if exception is not None:
            kind = failure_kind(status, retry_after, exception)
            self.failures.setdefault(scenario, Counter())[kind] += 1

    def reset(self) -> None:
        self.times.clear()
        self.failures.clear()
        self.statuses.clear()
        self.bytes_in.clear()

    def summary(self, seconds: float) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for scenario, values in sorted(self.times.items()):
            ordered = sorted(values)
            failures = self.failures.get(scenario, Counter())
            out[scenario] = {
                "requests": len(ordered),
                "failures": sum(failures.values()),
                "failure_kinds": dict(failures),
                "statuses": dict(self.statuses.get(scenario, Counter())),
                "rps": len(ordered) / seconds if seconds > 0 else 0.0,
                "p50_ms": percentile(ordered, 0.50),
                "p95_ms": percentile(ordered, 0.95),
                "p99_ms": percentile(ordered, 0.99),
                "max_ms": ordered[-1] if ordered else 0.0,
                "bytes": self.bytes_in[scenario],
            }
        return out
