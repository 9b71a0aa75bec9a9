"""The tunnel listener: a raw socket server that answers CONNECT and then relays bytes.

aiohttp cannot hand over a socket after answering, so this is a plain
asyncio server with its own small HTTP/1.1 front door. Per connection, in
order: read the request head (8 KiB, 10 s), parse it (400). A CONNECT naming
a tunnel prepared over HTTP (``POST /v1/tunnels/{id}/open``) attaches to its
connected, paid target (409 if the target or client differ). Otherwise: hold
a place under the caps and the tunnel id (503, 409), then check, resolve,
require payment, connect and charge (:mod:`cdn_edge.tunnel.dial`: 403, 402,
502...), answer ``200 Connection established`` and relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from yarl import URL

from cdn_edge.config import EdgeConfig
from cdn_edge.metrics import EdgeMetrics
from cdn_edge.tunnel.book import TunnelBook
from cdn_edge.tunnel.connect_request import (
    ESTABLISHED,
    MAX_HEAD,
    ConnectRequest,
    parse_connect,
    refusal,
)
from cdn_edge.tunnel.dial import open_target
from cdn_edge.tunnel.relay import Streams, Tunnel
from requester.errors import Refusal, ServiceRefusal
from requester.listener_limits import AddressCounter, peer_host
from requester.protocol import MalformedMessage

log = logging.getLogger(__name__)
LINGER = 2.0
"""After a refusal, how long to drain what the client still sends, so the close is not a reset."""


class InternalError(ServiceRefusal):
    status = 500
    code = "internal_error"


class TunnelServer:
    def __init__(self, book: TunnelBook, config: EdgeConfig, metrics: EdgeMetrics) -> None:
        self._book = book
        self._config = config
        self._metrics = metrics
        self._server: asyncio.Server | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._per_address = AddressCounter(config.max_connections_per_address)
        self.serving = asyncio.Event()
        """Set once connections are accepted (the socket listens only from then on)."""

    async def bind(self) -> str:
        """Bind the listening socket (not serving yet); return ``http://HOST:PORT``."""
        config = self._config
        self._server = await asyncio.start_server(
            self._accept, config.host, config.tunnel_port, limit=MAX_HEAD,
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
                    self._book.drop_prepared()
        finally:
            await self._server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._tasks is None:
            writer.transport.abort()
            return
        key = self._per_address.admit(peer_host(writer.get_extra_info("peername")))
        if key is None:  # over the per-address cap (requester/listener_limits.py)
            writer.transport.abort()
            return
        task = self._tasks.create_task(self._connection(reader, writer))
        task.add_done_callback(lambda _: self._per_address.release(key))

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
            opened = self._book.attach(request.tunnel_id, request.target, client)
            tunnel, target = opened or await self._open(request, client)
        except Refusal as exc:
            await self._refuse(reader, writer, exc)
            return
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # gone before sending a whole request: no one to answer
        await self._relay(tunnel, (reader, writer), target)

    async def _open(self, request: ConnectRequest, client: str) -> tuple[Tunnel, Streams]:
        """Hold the id, reach the target and charge: a new open tunnel (or the id freed)."""
        self._book.reserve(request.tunnel_id, client)
        try:
            target = await open_target(self._book, self._config, request, client)
        except Refusal:
            self._book.release(request.tunnel_id, client)
            raise
        except Exception as exc:
            self._book.release(request.tunnel_id, client)
            log.exception("opening a tunnel to %s failed", request.target)
            raise InternalError("internal error; see the edge's log") from exc
        except BaseException:
            self._book.release(request.tunnel_id, client)
            raise
        return self._book.open(request.tunnel_id, request.target, client), target

    async def _relay(self, tunnel: Tunnel, client: Streams, target: Streams) -> None:
        """Answer 200 and relay until the tunnel ends; then record why and close the target."""
        reason = "error"
        try:
            client[1].write(ESTABLISHED)
            await client[1].drain()
            reason = await tunnel.relay(client, target)
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
            async with asyncio.timeout(self._config.header_timeout):
                return await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            raise MalformedMessage(
                f"no complete request head within {self._config.header_timeout:g} s"
            ) from None
        except asyncio.LimitOverrunError:
            raise MalformedMessage(f"request head is over {MAX_HEAD} bytes") from None

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      exc: Refusal) -> None:  # fmt: skip
        self._metrics.tunnels_refused.labels(exc.code).inc()
        headers = self._book.refusal_headers(exc)
        with contextlib.suppress(OSError, TimeoutError, asyncio.LimitOverrunError, ValueError):
            writer.write(refusal(exc, headers))
            async with asyncio.timeout(LINGER):
                await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
                while await reader.read(MAX_HEAD):  # until the client closes too
                    pass
