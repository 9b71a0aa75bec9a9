"""The tunnel listener: a raw socket server that answers CONNECT and then relays bytes.

aiohttp cannot hand over a socket after answering, so this is a plain
asyncio server with its own small HTTP/1.1 front door. Per connection, in
order: read the request head (8 KiB, 10 s), parse it (400), hold a place under
the caps and the tunnel id (503, 409), check the target's port and literal
address against the SSRF guard, resolve once and check every address (403),
require payment to be present (402), connect (502), charge the unit
(402/400/409, stored before any byte moves), answer ``200 Connection
established`` and relay.

Payment is charged after the connect succeeds, so a payer never pays for a
target that cannot be reached; a CONNECT without any voucher (and no free
allowance) is refused before the edge opens any connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from yarl import URL

from cdn_edge.address_policy import BlockedAddress, check_address
from cdn_edge.config import EdgeConfig
from cdn_edge.connect_request import (
    ESTABLISHED,
    MAX_HEAD,
    ConnectRequest,
    TargetUnreachable,
    check_target,
    parse_connect,
    refusal,
)
from cdn_edge.metrics import EdgeMetrics
from cdn_edge.tunnel import Streams
from cdn_edge.tunnel_book import TunnelBook
from requester.protocol import MalformedMessage, PaymentRequired, ProtocolError, b64url_encode

log = logging.getLogger(__name__)
TARGET_BUFFER = 64 * 1024
"""Stream buffer towards a target; the client side uses MAX_HEAD, the head limit."""
LINGER = 2.0
"""After a refusal, how long to drain what the client still sends, so the close is not a reset."""


class InternalError(ProtocolError):
    status = 500
    code = "internal_error"


class TunnelServer:
    def __init__(self, book: TunnelBook, config: EdgeConfig, metrics: EdgeMetrics) -> None:
        self._book = book
        self._config = config
        self._metrics = metrics
        self._server: asyncio.Server | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self.serving = asyncio.Event()
        """Set once connections are accepted (the socket listens only from then on)."""

    async def bind(self) -> str:
        """Bind the listening socket (not serving yet); return ``http://HOST:PORT``."""
        config = self._config
        self._server = await asyncio.start_server(
            self._accept, config.tunnel_host, config.tunnel_port or 0, limit=MAX_HEAD,
            start_serving=False,
        )  # fmt: skip
        host, port = self._server.sockets[0].getsockname()[:2]
        if config.public_url is not None:
            host = URL(config.public_url).host or host
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def run(self) -> None:
        """Serve until cancelled; then stop accepting and close every tunnel."""
        assert self._server is not None, "bind() first"
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                await self._server.start_serving()
                self.serving.set()
                try:
                    await asyncio.Event().wait()
                finally:
                    self._tasks = None
                    self._server.close()  # no new connections while the tunnels close
        finally:
            await self._server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._tasks is None:
            writer.transport.abort()
            return
        self._tasks.create_task(self._connection(reader, writer))

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:  # fmt: skip
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if peer else "unknown"
        try:
            await self._serve(reader, writer, client)
        except Exception:
            log.exception("tunnel connection from %s failed", client)
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     client: str) -> None:  # fmt: skip
        try:
            request = parse_connect(await self._read_head(reader))
        except ProtocolError as exc:
            await self._refuse(reader, writer, exc)
            return
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # gone before sending a whole request: no one to answer
        try:
            self._book.reserve(request.tunnel_id, client)
        except ProtocolError as exc:
            await self._refuse(reader, writer, exc)
            return
        try:
            target = await self._open_target(request, client)
        except ProtocolError as exc:
            self._book.release(request.tunnel_id, client)
            await self._refuse(reader, writer, exc)
            return
        except Exception:
            self._book.release(request.tunnel_id, client)
            log.exception("opening a tunnel to %s failed", request.target)
            await self._refuse(reader, writer, InternalError("internal error; see the edge's log"))
            return
        except BaseException:
            self._book.release(request.tunnel_id, client)
            raise
        tunnel = self._book.open(request.tunnel_id, request.target, client)
        reason = "error"
        try:
            writer.write(ESTABLISHED)
            await writer.drain()
            reason = await tunnel.relay((reader, writer), target)
        except OSError:
            reason = "connection_error"
        except asyncio.CancelledError:
            reason = "shutdown"
            raise
        finally:
            self._book.closed(tunnel, reason)
            target[1].close()

    async def _read_head(self, reader: asyncio.StreamReader) -> bytes:
        try:
            async with asyncio.timeout(self._config.tunnel_head_timeout):
                return await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            raise MalformedMessage(
                f"no complete request head within {self._config.tunnel_head_timeout:g} s"
            ) from None
        except asyncio.LimitOverrunError:
            raise MalformedMessage(f"request head is over {MAX_HEAD} bytes") from None

    async def _open_target(self, request: ConnectRequest, client: str) -> Streams:
        """Check, resolve, connect, then charge one unit: the target, ready to relay."""
        allow_private = self._config.allow_private_origins
        check_target(request, allow_private=allow_private)
        timeout = self._config.tunnel_connect_timeout
        try:
            async with asyncio.timeout(timeout):
                addresses = await _resolve_checked(request.host, request.port, allow_private)
                if request.voucher is None and not self._book.free_covers(client, 1):
                    raise PaymentRequired(
                        f"a tunnel unit ({self._book.unit} bytes) costs "
                        f"{self._book.unit_price}; send an Atlas-Voucher"
                    )
                target = await _connect(addresses, request.port)
        except TimeoutError:
            raise TargetUnreachable(
                f"{request.target}: no connection within {timeout:g} s"
            ) from None
        try:
            await self._book.charge(request.voucher, client, 1)
        except BaseException:
            target[1].transport.abort()
            raise
        return target

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      exc: ProtocolError) -> None:  # fmt: skip
        self._metrics.tunnels_refused.labels(exc.code).inc()
        headers: dict[str, str] = {}
        if isinstance(exc, PaymentRequired):
            headers["Atlas-Quote"] = b64url_encode(self._book.quote().encode())
            headers["Atlas-Price"] = str(self._book.unit_price)
        elif exc.status == 503:
            headers["Retry-After"] = "1"
        with contextlib.suppress(OSError, TimeoutError, asyncio.LimitOverrunError, ValueError):
            writer.write(refusal(exc, headers))
            async with asyncio.timeout(LINGER):
                await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
                while await reader.read(MAX_HEAD):  # until the client closes too
                    pass


async def _resolve_checked(host: str, port: int, allow_private: bool) -> list[str]:
    """Resolve once; refuse the target if any address it resolves to is off limits."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetUnreachable(f"cannot resolve {host}: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        try:
            check_address(address, allow_private=allow_private)
        except BlockedAddress as exc:
            raise BlockedAddress(f"host {host}", f"resolves to {exc.reason} {address}") from None
    if not addresses:
        raise TargetUnreachable(f"{host} resolves to no address")
    return addresses


async def _connect(addresses: list[str], port: int) -> Streams:
    """Connect to the first address that answers (the checked ones, never a new lookup)."""
    errors = []
    for address in addresses:
        try:
            return await asyncio.open_connection(address, port, limit=TARGET_BUFFER)
        except OSError as exc:
            errors.append(f"{address}: {exc.strerror or exc}")
    raise TargetUnreachable(f"cannot connect to port {port}: {'; '.join(errors)}")
