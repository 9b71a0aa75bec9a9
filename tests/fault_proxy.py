"""A fault-injecting TCP proxy for tests: put it between two Atlas parts and break the link.

Run as its own process (``python tests/fault_proxy.py --upstream HOST:PORT``); it
prints ``{"listening": URL, "control": URL}`` when ready. Every connection to
``listening`` is relayed to the upstream; once a fault is armed, it applies to the
first ``count`` connections that carry bytes in its direction from then on (open
ones included, so keep-alive connections are not spared), after ``after`` more
bytes in that direction:

  delay     each read is held ``delay`` seconds before it is passed on
  stall     nothing more is passed on in that direction; both sockets stay open
  reset     both sockets are aborted with a TCP RST
  truncate  both sockets are closed cleanly (FIN), mid-message
  corrupt   one byte in every ``every`` bytes is flipped (XOR 0xFF)

Control, on the ``control`` URL (JSON): ``POST /fault`` with ``{"mode", "direction":
"down"|"up", "after", "count", "delay", "every"}`` arms a fault (``count`` 0 = every
connection; ``down`` = upstream to client, the answers); ``DELETE /fault`` disarms;
``GET /stats`` says how many connections were seen and faulted; ``PUT /upstream``
with ``{"upstream": "HOST:PORT"}`` sets where new connections go (so a proxy can
start before the program it fronts, which may need to know the proxy's address).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import struct
import sys
from dataclasses import dataclass, field

from aiohttp import web

READ_SIZE = 16 * 1024
MODES = frozenset({"delay", "stall", "reset", "truncate", "corrupt"})


@dataclass
class Fault:
    mode: str
    direction: str = "down"
    after: int = 0
    count: int = 1
    """Connections to fault; 0 = all."""
    delay: float = 0.2
    every: int = 65536
    claimed: set[int] = field(default_factory=set)

    def claims(self, conn: int) -> bool:
        """Whether connection ``conn`` is (or now becomes) one of the faulted ones."""
        if conn in self.claimed:
            return True
        if self.count and len(self.claimed) >= self.count:
            return False
        self.claimed.add(conn)
        return True


@dataclass
class Proxy:
    upstream: tuple[str, int]
    fault: Fault | None = None
    connections: int = 0
    faulted: int = 0
    aborted: set[int] = field(default_factory=set)

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            _abort(client_w)
            return
        async with asyncio.TaskGroup() as group:
            group.create_task(self._pump(conn, "up", client_r, up_w, client_w))
            group.create_task(self._pump(conn, "down", up_r, client_w, up_w))

    async def _pump(self, conn: int, direction: str, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, other: asyncio.StreamWriter) -> None:  # fmt: skip
        """Copy one direction, applying the armed fault when it claims this connection."""
        counted = 0  # bytes in this direction since the fault claimed the connection
        owner: Fault | None = None
        try:
            while data := await reader.read(READ_SIZE):
                fault = self.fault
                claimed = fault is not None and fault is not owner and fault.direction == direction
                if claimed and fault is not None and fault.claims(conn):
                    owner, counted = fault, 0
                    self.faulted += 1
                if owner is not None and owner is self.fault:
                    passed = await self._apply(owner, conn, data, counted, reader, writer, other)
                    if passed is None:
                        return
                    counted += len(passed)
                    data = passed
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if conn not in self.aborted:
                with contextlib.suppress(Exception):
                    writer.close()

    async def _apply(self, fault: Fault, conn: int, data: bytes, counted: int,
                     reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     other: asyncio.StreamWriter) -> bytes | None:  # fmt: skip
        """The bytes to pass on (None: this direction is finished)."""
        if fault.mode == "delay":
            await asyncio.sleep(fault.delay)
            return data
        keep = max(0, fault.after - counted)
        if keep >= len(data):
            return data
        if fault.mode == "corrupt":
            flipped = bytearray(data)
            for at in range(keep, len(data)):
                if (counted + at - fault.after) % fault.every == 0:
                    flipped[at] ^= 0xFF
            return bytes(flipped)
        writer.write(data[:keep])
        with contextlib.suppress(ConnectionError, OSError):
            await writer.drain()
        if fault.mode == "stall":  # swallow what comes until the sender gives up
            while await reader.read(READ_SIZE):
                pass
            return None
        if fault.mode == "reset":
            self.aborted.add(conn)
            _abort(writer)
            _abort(other)
        else:  # truncate
            writer.close()
            other.close()
        return None

    async def control(self, request: web.Request) -> web.Response:
        if request.path == "/upstream":
            self.upstream = _host_port((await request.json())["upstream"])
        elif request.method == "DELETE":
            self.fault = None
        elif request.method == "POST":
            spec = await request.json()
            if spec.get("mode") not in MODES:
                raise web.HTTPBadRequest(text=f"mode must be one of {sorted(MODES)}")
            self.fault = Fault(**spec)
        return web.json_response({"connections": self.connections, "faulted": self.faulted,
                                  "armed": self.fault.mode if self.fault else None})  # fmt: skip


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST: SO_LINGER 0, then abort."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def serve(upstream: tuple[str, int], fault: Fault | None) -> None:
    proxy = Proxy(upstream, fault)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    app = web.Application()
    app.router.add_route("*", "/fault", proxy.control)
    app.router.add_get("/stats", proxy.control)
    app.router.add_put("/upstream", proxy.control)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = server.sockets[0].getsockname()[1]
    ready = {"listening": f"http://127.0.0.1:{port}",
             "control": f"http://127.0.0.1:{runner.addresses[0][1]}"}  # fmt: skip
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--upstream", default="127.0.0.1:9", help="HOST:PORT or http://HOST:PORT (or set it later)"
    )
    parser.add_argument("--fault", help='armed from the start, as JSON: {"mode": "reset", ...}')
    args = parser.parse_args()
    fault = Fault(**json.loads(args.fault)) if args.fault else None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(_host_port(args.upstream), fault))


def _host_port(upstream: str) -> tuple[str, int]:
    host, _, port = upstream.removeprefix("http://").rstrip("/").rpartition(":")
    return host, int(port)


if __name__ == "__main__":
    main()
