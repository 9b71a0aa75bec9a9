"""Fuzz targets for HTTP endpoints whose input is parsed inside the handler.

The ledger's API and the proxy's API (mobile fetch, relay, pages) run in this
process on 127.0.0.1, each on a real socket; a fuzz input becomes one raw HTTP/1.1
request (method, path and query with any bytes percent-encoded, headers with any
bytes but CR/LF/NUL, a body). The oracle: never a 500 (an unhandled exception), and
the ledger answers every 4xx with a JSON problem. The proxy's edge is 127.0.0.1:9,
where nothing listens, so nothing leaves the machine. The proxy's ``parse_range`` is
pure and targeted directly, with the invariants of the range it returns.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from cdn_edge.ledger.app import LedgerConfig
from cdn_edge.ledger.app import create_app as create_ledger
from cdn_edge.serving import HANDLER_OPTIONS
from proxy.backend import RELAY_PATH, RELAY_SECRET_HEADER, RELAY_URL_HEADER
from proxy.backend import create_app as create_proxy_api
from proxy.relay import parse_range
from proxy.service import KEEPALIVE_TIMEOUT
from proxy.spending import Limits, SpendBook
from proxy.state import ProxyState
from requester.guarded_server import GuardedSite
from requester.listener_limits import DEFAULT_LIMITS
from tests.fuzz.target import Fields, OracleViolation, target

ANSWER_TIMEOUT = 10.0
TOKEN = "fuzz-api-token"
RELAY_SECRET = "fuzz-relay-secret"


class Served:
    """One app on 127.0.0.1 in its own event loop, started on first use."""

    def __init__(self, make: Callable[[Path], Awaitable[web.Application]],
                 **options: Any) -> None:  # fmt: skip
        self._make = make
        self._options = options
        """The listener's handler options, as the real program sets them."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="atlas-fuzz-")
        self.port = 0

    def ask(self, raw: bytes) -> tuple[int, str]:
        """Send one raw request; the answer's status and Content-Type."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._start())
        return self._loop.run_until_complete(self._ask(raw))

    async def _start(self) -> None:
        self._runner = web.AppRunner(await self._make(Path(self._tmp.name)), access_log=None)
        await self._runner.setup()
        # The real programs' listener (header timer, per-address cap, JSON problems for
        # what aiohttp answers by itself), so findings are about what strangers meet.
        await GuardedSite(self._runner, "127.0.0.1", 0, DEFAULT_LIMITS, **self._options).start()
        self.port = self._runner.addresses[0][1]

    async def _ask(self, raw: bytes) -> tuple[int, str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(raw)
            async with asyncio.timeout(ANSWER_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            raise OracleViolation(f"no answer within {ANSWER_TIMEOUT} s") from None
        finally:
            writer.close()
        lines = head.decode("latin-1").split("\r\n")
        ctype = next(
            (ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("content-type:")),
            "",
        )
        return int(lines[0].split(" ")[1]), ctype

    def close(self) -> None:
        """Stop the app (tests call this; a fuzzing process just exits)."""
        if self._loop is not None and self._runner is not None:
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()
            self._loop = self._runner = None
        self._tmp.cleanup()


def request_bytes(
    data: bytes,
    methods: tuple[str, ...],
    prefixes: tuple[str, ...],
    extra: dict[str, str] | None = None,
) -> bytes:
    """A well-formed HTTP/1.1 request whose every part the input chooses."""
    fields = Fields(data)
    method = methods[fields.pick(len(methods))]
    path = prefixes[fields.pick(len(prefixes))] + quote(fields.blob(600), safe="/?=&")
    headers = dict(extra or {})
    for _ in range(fields.pick(4)):
        name = quote(fields.blob(40), safe="").replace("%", "x") or "x-empty"
        value = bytes(b for b in fields.blob(9000) if b not in b"\r\n\x00")
        headers[name] = value.decode("latin-1")
    body = fields.rest()
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Connection: close",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _ledger_app(tmp: Path) -> web.Application:
    return create_ledger(LedgerConfig(data_dir=tmp, faucet=True))


LEDGER = Served(_ledger_app, **HANDLER_OPTIONS)
LEDGER_PATHS = (
    "/v1/accounts/",
    "/v1/channels/",
    "/v1/faucet",
    "/v1/calls",
    "/v1/redeem",
    "/v1/info",
    "/healthz",
    "/metrics",
    "/",
)


def _ledger_seeds() -> Iterator[bytes]:
    address = "TBvJUBXorwBPzqvV38vjDgegj5Eh6g2Tsq"
    faucet = json.dumps({"address": address, "amount": "1.5"}).encode()
    cases = (
        (0, f"{address}/history?limit=10", b""),
        (1, "ab" * 32, b""),
        (2, "", faucet),
        (4, "", b'{"voucher": "QVRW"}'),
    )
    for path_index, path, body in cases:
        encoded = path.encode()
        method = 1 if path_index in (2, 3, 4) else 0
        yield bytes([method, path_index]) + len(encoded).to_bytes(2, "big") + encoded + b"\0" + body


@target("ledger_http", seeds=_ledger_seeds, allowed=())
def ledger_http(data: bytes) -> None:
    """Any request to the embedded ledger's API: a 4xx JSON problem or a success."""
    status, ctype = LEDGER.ask(request_bytes(data, ("GET", "POST"), LEDGER_PATHS))
    if status >= 500 or (status >= 400 and not ctype.startswith("application/problem+json")):
        raise OracleViolation(f"ledger answered {status} {ctype or '(no type)'}")


async def _proxy_app(tmp: Path) -> web.Application:
    session = aiohttp.ClientSession()
    book = SpendBook(tmp / "spend.sqlite3", Limits(None, None))
    state = ProxyState(
        edges=["http://127.0.0.1:9"],
        session=session,
        manager=None,
        ledger=None,
        address=None,
        book=book,
        api_token=TOKEN,
        ca_cert=None,
        intercept=False,
        relay_secret=RELAY_SECRET,
    )
    app = create_proxy_api(state)

    async def close(_: web.Application) -> None:
        await session.close()
        book.close()

    app.on_cleanup.append(close)
    return app


PROXY = Served(_proxy_app, keepalive_timeout=KEEPALIVE_TIMEOUT, access_log=None)
PROXY_PATHS = (
    "/v1/fetch?url=",
    "/v1/fetch?",
    RELAY_PATH,
    "/status.json",
    "/",
    "/proxy.pac",
    "/ca",
    "/ca.pem",
    "/metrics",
    "/healthz",
)


def _proxy_seeds() -> Iterator[bytes]:
    cases = (
        (1, 0, "http://127.0.0.1:9/a"),
        (0, 0, "http://x.example/"),
        (1, 0, "magnet:?xt=urn:btih:" + "ab" * 20),
        (1, 1, "url=http://x/&file=a"),
        (2, 2, ""),
        (0, 3, ""),
    )
    for flags, path_index, path in cases:
        encoded = path.encode()
        yield bytes([flags, 0, path_index]) + len(encoded).to_bytes(2, "big") + encoded


@target("proxy_http", seeds=_proxy_seeds, allowed=())
def proxy_http(data: bytes) -> None:
    """Any request to the proxy's API port: mobile fetch (token known or not), the
    relay path (secret known or not), pages. Never a 500."""
    flags = data[:1][0] if data else 0
    extra = {}
    if flags & 1:
        extra["Authorization"] = f"Bearer {TOKEN}"
    if flags & 2:
        extra[RELAY_SECRET_HEADER] = RELAY_SECRET
        extra[RELAY_URL_HEADER] = "http://127.0.0.1:9/relayed"
    status, ctype = PROXY.ask(request_bytes(data[1:], ("GET", "HEAD", "POST"), PROXY_PATHS, extra))
    if status == 500:
        raise OracleViolation(f"proxy API answered 500 {ctype}")


@target("proxy_range", seeds=lambda: iter([b"\x00\x10bytes=0-99", b"\x01\x00bytes=-5"]), allowed=())
def proxy_range(data: bytes) -> None:
    """parse_range: a browser's or phone's Range against a known size."""
    total = max(1, int.from_bytes(data[:2], "big"))  # the relay asks only with a size
    wanted = parse_range(data[2:].decode("utf-8", "surrogateescape"), total)
    if isinstance(wanted, tuple):
        first, last = wanted
        if not 0 <= first <= last < total:
            raise OracleViolation(f"range {wanted} of {total} bytes")
    elif wanted not in (None, "unsatisfiable"):
        raise OracleViolation(f"parse_range returned {wanted!r}")
