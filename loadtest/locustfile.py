"""Locust scenarios against a running Atlas network (``atlas up``) and the test origin.

Run by ``loadtest/run_loadtest.py`` (``make loadtest``) as its own process; it can also
be run by hand against a network you started::

    .venv/bin/atlas up --data-dir /tmp/a --edges 3 --proxy-port 0 --allow-private-origins \\
        > /tmp/up.json &
    .venv/bin/python tests/origin_server.py --port 0      # prints {"listening": URL}
    ATLAS_UP_JSON=/tmp/up.json ATLAS_ORIGIN=http://127.0.0.1:PORT \\
        .venv/bin/locust --config loadtest/locust.conf -f loadtest/locustfile.py -u 20 -r 5 -t 60s

Scenarios (each request's name starts with the scenario and a colon):

- ``browser``  a page through the proxy (plain HTTP, the proxy as HTTP proxy): the page,
  its CSS/JS/SVG and several ``/cached/`` items fetched 6 at a time like a browser, now and
  then a large ``/bytes/N`` of a few MiB; think time between pages.
- ``mobile``   the mobile API ``GET {api}/v1/fetch?url=...`` with a bearer token and a
  Range on ``/site/video.bin`` (video seeking); checks 206, Content-Range, length and
  the first bytes.
- ``paying``   a raw client paying an edge itself: a fresh faucet-funded key per user, the
  402 quote, its own channel opened on the ledger (a signed ``open`` call), then one
  cumulative voucher per 256 KiB chunk; every Nth chunk's signed statement and SHA-256
  are checked (``ATLAS_LT_VERIFY_EVERY``, default 8).
- ``operator`` scrapes ``/metrics`` of every edge and of the proxy every 2 s.

Settings, from the environment (or the ``--atlas-*`` options below):
``ATLAS_UP_JSON`` (atlas up's line, or a file holding it), ``ATLAS_ORIGIN`` (origin URL),
``ATLAS_LT_SCENARIOS_JSON`` (where to write per-scenario statistics at exit),
``ATLAS_LT_THINK_BROWSER``/``_MOBILE``/``_PAYING`` ("a,b" seconds),
``ATLAS_LT_LARGE_P`` (chance a page also loads a large object, default 0.1),
``ATLAS_LT_EDGE`` (edge index the paying users use; default: spread over all).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlencode

import gevent.lock  # type: ignore[import-untyped]
import gevent.pool  # type: ignore[import-untyped]
from locust import FastHttpUser, between, constant_pacing, events, task
from locust.env import Environment

from loadtest.atlas_load import (
    MIB,
    VIDEO_SIZE,
    ScenarioStats,
    Targets,
    check_opened,
    domain_of,
    env_float,
    env_float_pair,
    env_int,
    faucet_body,
    load_targets,
    next_voucher,
    open_channel_call,
    pattern,
)
from requester.protocol import (
    ChannelExpired,
    DepositExceeded,
    ManifestHead,
    PayerChannel,
    PayerKey,
    PaymentDomain,
    ProtocolError,
    Quote,
    WrongBinding,
    b64url_decode,
)
from requester.protocol.manifest import MAX_HEAD_BYTES, STATEMENT_SIZE
from requester.protocol.quote import QUOTE_SIZE

SITE_ASSETS = ("/site/style.css", "/site/app.js", "/site/pixel.svg")
CACHED_ITEMS = tuple(f"/cached/item-{i:02d}" for i in range(40))
PAGE_PARALLEL = 6
"""Objects a browser fetches at once over its connections to the proxy."""
LARGE_SIZES = (2 * MIB, 3 * MIB, 4 * MIB)
PAID_CONTENT = "/bytes/2097152"
"""What the paying users buy: 8 chunks of 256 KiB (binary, so sent without zstd)."""
RANGE_SIZES = (64 * 1024, 256 * 1024, 1024 * 1024)

STATS = ScenarioStats()
_started = time.monotonic()
_targets: Targets | None = None


# --- options and per-scenario statistics ------------------------------------------------------


def _options(parser: Any) -> None:
    group = parser.add_argument_group("Atlas")
    group.add_argument("--atlas-up-json", default="", env_var="ATLAS_UP_JSON",
                       help="atlas up's JSON line, or a file holding it")  # fmt: skip
    group.add_argument("--atlas-origin", default="", env_var="ATLAS_ORIGIN",
                       help="the test origin's URL (tests/origin_server.py)")  # fmt: skip
    group.add_argument("--atlas-scenarios-json", default="", env_var="ATLAS_LT_SCENARIOS_JSON",
                       help="write per-scenario statistics here at exit")  # fmt: skip


def targets(environment: Environment) -> Targets:
    global _targets  # noqa: PLW0603 (one parse per process)
    if _targets is None:
        options = environment.parsed_options
        up_json = getattr(options, "atlas_up_json", "") or os.environ.get("ATLAS_UP_JSON", "")
        origin = getattr(options, "atlas_origin", "") or os.environ.get("ATLAS_ORIGIN", "")
        _targets = load_targets(up_json, origin)
    return _targets


def _record(name: str, response_time: float, response_length: int, response: Any = None,
            exception: BaseException | None = None, **_: Any) -> None:  # fmt: skip
    status = int(getattr(response, "status_code", 0) or 0)
    headers = getattr(response, "headers", None)
    retry_after = bool(headers is not None and headers.get("Retry-After"))
    STATS.record(name, response_time, response_length, status, retry_after, exception)


def _reset(**_: Any) -> None:
    global _started  # noqa: PLW0603
    STATS.reset()
    _started = time.monotonic()


def _start(**_: Any) -> None:
    global _started  # noqa: PLW0603
    _started = time.monotonic()


def _write(environment: Environment, **_: Any) -> None:
    path = getattr(environment.parsed_options, "atlas_scenarios_json", "") or os.environ.get(
        "ATLAS_LT_SCENARIOS_JSON", ""
    )
    if path:
        seconds = time.monotonic() - _started
        with open(path, "w", encoding="utf-8") as out:  # noqa: PTH123
            json.dump({"seconds": seconds, "scenarios": STATS.summary(seconds)}, out, indent=1)


def _listen(hook: Any, listener: Callable[..., None]) -> None:
    hook.add_listener(listener)  # locust's EventHook is not annotated


_listen(events.init_command_line_parser, _options)
_listen(events.request, _record)
_listen(events.reset_stats, _reset)
_listen(events.test_start, _start)
_listen(events.quitting, _write)


# --- the users ---------------------------------------------------------------------------------


class AtlasUser(FastHttpUser):
    """A user whose base URL and HTTP proxy come from the targets, not from ``--host``."""

    abstract = True
    network_timeout = 30.0
    connection_timeout = 10.0
    scenario: ClassVar[str] = "atlas"

    def __init__(self, environment: Environment) -> None:
        self.targets = targets(environment)
        self.host = self.base_url(self.targets)
        super().__init__(environment)

    def base_url(self, t: Targets) -> str:
        raise NotImplementedError

    def name(self, what: str) -> str:
        return f"{self.scenario}: {what}"


class BrowserUser(AtlasUser):
    """A page with many small objects through the proxy; now and then a large download."""

    scenario = "browser"
    weight = 5
    wait_time = between(*env_float_pair("ATLAS_LT_THINK_BROWSER", (1.0, 3.0)))
    large_p = env_float("ATLAS_LT_LARGE_P", 0.1)
    cached_per_page = 8

    def __init__(self, environment: Environment) -> None:
        t = targets(environment)
        self.proxy_host, self.proxy_port = t.proxy_address
        super().__init__(environment)

    def base_url(self, t: Targets) -> str:
        return t.origin

    @task
    def page(self) -> None:
        self.get_object("/site/index.html", "page")
        objects = [(p, "site asset") for p in SITE_ASSETS]
        objects += [(p, "cached item") for p in random.sample(CACHED_ITEMS, self.cached_per_page)]
        pool = gevent.pool.Pool(PAGE_PARALLEL)
        for path, what in objects:
            pool.spawn(self.get_object, path, what)
        pool.join()
        if random.random() < self.large_p:
            size = random.choice(LARGE_SIZES)
            self.get_object(f"/bytes/{size}", "large object", size)

    def get_object(self, path: str, what: str, size: int | None = None) -> None:
        with self.client.get(path, name=self.name(what), catch_response=True) as resp:
            body = resp.content or b""
            length = resp.headers.get("Content-Length") if resp.headers else None
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {body[:120]!r}")
            elif "atlas" not in (resp.headers.get("Via") or ""):
                resp.failure("answer did not come through Atlas (no Via: 1.1 atlas)")
            elif length is None or int(length) != len(body):
                resp.failure(f"short body: {len(body)} of Content-Length {length}")
            elif size is not None and (len(body) != size or body[:32] != pattern(0, 32)):
                resp.failure(f"wrong body: {len(body)} bytes, want {size} of the pattern")
            else:
                resp.success()


class MobileUser(AtlasUser):
    """A phone app on the mobile API seeking through a video with Range requests."""

    scenario = "mobile"
    weight = 2
    wait_time = between(*env_float_pair("ATLAS_LT_THINK_MOBILE", (0.5, 2.0)))

    def base_url(self, t: Targets) -> str:
        return t.api

    def on_start(self) -> None:
        query = urlencode({"url": f"{self.targets.origin}/site/video.bin"})
        self.path = f"/v1/fetch?{query}"
        self.auth = {"Authorization": f"Bearer {self.targets.api_token}"}

    @task
    def seek(self) -> None:
        length = random.choice(RANGE_SIZES)
        first = random.randrange(0, VIDEO_SIZE - length)
        last = first + length - 1
        headers = {**self.auth, "Range": f"bytes={first}-{last}"}
        with self.client.get(self.path, headers=headers, name=self.name("video range"),
                             catch_response=True) as resp:  # fmt: skip
            body = resp.content or b""
            want_range = f"bytes {first}-{last}/{VIDEO_SIZE}"
            if resp.status_code != 206:
                resp.failure(f"HTTP {resp.status_code}, want 206: {body[:120]!r}")
            elif resp.headers.get("Content-Range") != want_range:
                resp.failure(f"Content-Range {resp.headers.get('Content-Range')!r}")
            elif len(body) != length or body[:32] != pattern(first, 32):
                resp.failure(f"wrong bytes: {len(body)} of {length}")
            else:
                resp.success()


class PayingEdgeUser(AtlasUser):
    """An app that pays an edge itself: quote, own channel, a voucher per chunk."""

    scenario = "paying"
    weight = 2
    wait_time = between(*env_float_pair("ATLAS_LT_THINK_PAYING", (0.2, 1.0)))
    verify_every = env_int("ATLAS_LT_VERIFY_EVERY", 8)
    edge_index: ClassVar[int | None] = None
    _spread = itertools.count()
    _domain: ClassVar[PaymentDomain | None] = None
    _contents: ClassVar[dict[str, tuple[str, ManifestHead]]] = {}
    _content_lock = gevent.lock.Semaphore()

    def base_url(self, t: Targets) -> str:
        index = self.edge_index
        if index is None:
            index = int(env_int("ATLAS_LT_EDGE", -1))
        if index < 0:
            index = next(self._spread) % len(t.edges)
        return t.edges[index]

    def on_start(self) -> None:
        self.key = PayerKey.generate()
        self.channel: PayerChannel | None = None
        self.served = 0
        self.chunks = 8
        self.index = random.randrange(self.chunks)

    def set_up(self) -> None:
        """Faucet, content, quote and channel; retried by the task until it succeeds."""
        self.domain = self.ledger_domain()
        self.ledger_post("/v1/faucet", faucet_body(self.key.address), "ledger faucet")
        self.content_id, self.head = self.content()
        self.quote = self.first_quote()
        self.price = self.quote.chunk_price(self.head.chunk_size)
        self.open_channel()

    def ledger_domain(self) -> PaymentDomain:
        if PayingEdgeUser._domain is None:
            PayingEdgeUser._domain = domain_of(self.ledger_get("/v1/info", "ledger info"))
        return PayingEdgeUser._domain

    def ledger_get(self, path: str, what: str) -> dict[str, Any]:
        return self.json_call("GET", f"{self.targets.ledger}{path}", None, what)

    def ledger_post(self, path: str, body: dict[str, str], what: str) -> dict[str, Any]:
        return self.json_call("POST", f"{self.targets.ledger}{path}", body, what)

    def json_call(self, method: str, url: str, body: dict[str, str] | None,
                  what: str) -> dict[str, Any]:  # fmt: skip
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
                url = f"{self.targets.origin}{PAID_CONTENT}"
                data = self.json_call("POST", "/v1/fetch", {"url": url}, "edge fetch")
                head = ManifestHead.decode(b64url_decode(data["head"], MAX_HEAD_BYTES, "head"))
                known = (str(data["content_id"]), head)
                self._contents[self.host or ""] = known
            return known

    def chunk_path(self, index: int) -> str:
        return f"/v1/chunk/{self.content_id}/{index}"

    def first_quote(self) -> Quote:
        """Ask for a chunk without paying until the edge answers 402 with its quote (the
        client address's free allowance, shared by every user here, may serve a few)."""
        for _ in range(40):
            with self.client.get(self.chunk_path(self.index), name=self.name("chunk unpaid"),
                                 headers={"Accept-Encoding": "identity"},
                                 catch_response=True) as resp:  # fmt: skip
                if resp.status_code == 402:
                    resp.success()
                    raw = resp.headers.get("Atlas-Quote") or ""
                    quote = Quote.decode(b64url_decode(raw, QUOTE_SIZE, "Atlas-Quote"))
                    if quote.content_id.hex() != self.content_id or quote.domain != self.domain:
                        raise SetupFailed("the quote is for another content or ledger")
                    return quote
                if resp.status_code == 200:
                    resp.success()  # served from the free allowance
                    self.index = (self.index + 1) % self.chunks
                    continue
                resp.failure(f"HTTP {resp.status_code}, want 402 or 200")
                raise SetupFailed(f"no quote: HTTP {resp.status_code}")
        raise SetupFailed("the edge never asked for payment")

    def open_channel(self) -> None:
        account = self.ledger_get(f"/v1/accounts/{self.key.address}", "ledger account")
        request = open_channel_call(self.key, self.domain, self.quote.payee,
                                    int(account["next_nonce"]), int(time.time()))  # fmt: skip
        answer = self.ledger_post("/v1/calls", request.body, "ledger open channel")
        check_opened(answer, request)
        self.channel = PayerChannel(request.terms, self.key)

    @task
    def buy_chunk(self) -> None:
        if self.channel is None:
            try:
                self.set_up()
            except (SetupFailed, ProtocolError, KeyError, ValueError) as exc:
                logging.warning("paying user set-up failed: %s", exc)
                gevent.sleep(1.0)
                return
        assert self.channel is not None
        try:
            voucher = next_voucher(self.channel, self.price, int(time.time()))
        except (DepositExceeded, ChannelExpired):
            self.open_channel()
            return
        index = self.index
        self.index = (self.index + 1) % self.chunks
        headers = {"Atlas-Voucher": voucher, "Accept-Encoding": "identity"}
        with self.client.get(self.chunk_path(index), headers=headers, name=self.name("chunk"),
                             catch_response=True) as resp:  # fmt: skip
            body = resp.content or b""
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {body[:160]!r}")
                if resp.status_code in (429, 503):
                    self.back_off(resp.headers.get("Retry-After"))
                return
            if resp.headers.get("Atlas-Paid-By") not in ("voucher", "credit"):
                resp.failure(f"paid by {resp.headers.get('Atlas-Paid-By')!r}")
                return
            self.served += 1
            if self.verify_every and self.served % self.verify_every == 0:
                raw = resp.headers.get("Atlas-Chunk") or ""
                try:
                    statement = self.head.verify_statement(
                        b64url_decode(raw, STATEMENT_SIZE, "Atlas-Chunk")
                    )
                    if statement.index != index:
                        raise WrongBinding(f"statement for chunk {statement.index}, not {index}")
                    statement.check(body)
                except ProtocolError as exc:
                    resp.failure(f"chunk {index} failed verification: {exc}")
                    return
            elif len(body) != self.head.chunk_size:
                resp.failure(f"chunk of {len(body)} bytes")
                return
            resp.success()

    def back_off(self, retry_after: str | None) -> None:
        try:
            delay = min(5.0, float(retry_after or "1"))
        except ValueError:
            delay = 1.0
        gevent.sleep(delay)


class OperatorUser(AtlasUser):
    """An operator's Prometheus: every edge's and the proxy's ``/metrics`` every 2 s."""

    scenario = "operator"
    fixed_count = 1
    wait_time = constant_pacing(2.0)

    def base_url(self, t: Targets) -> str:
        return t.api

    @task
    def scrape(self) -> None:
        for edge in self.targets.edges:
            self.scrape_one(f"{edge}/metrics", "edge /metrics", "atlas_edge_bytes_sent")
        token = {"Authorization": f"Bearer {self.targets.api_token}"}  # the proxy's API needs it
        self.scrape_one("/metrics", "proxy /metrics", "atlas_proxy_requests", token)

    def scrape_one(self, url: str, what: str, needle: str,
                   headers: dict[str, str] | None = None) -> None:  # fmt: skip
        with self.client.get(url, name=self.name(what), headers=headers,
                             catch_response=True) as resp:  # fmt: skip
            if resp.status_code != 200 or needle not in (resp.text or ""):
                resp.failure(f"HTTP {resp.status_code}, {needle} missing")
            else:
                resp.success()


class SetupFailed(Exception):
    """A paying user could not get its content, quote or channel (already recorded)."""
