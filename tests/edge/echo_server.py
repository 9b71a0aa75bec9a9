"""A TCP echo server: the target tunnel tests reach through an edge.

Echoes every byte back. A connection whose bytes contain ``QUIT`` is closed by
the server once it has echoed them, so tests can see a target hang up.
Prints ``{"listening": "tcp://127.0.0.1:PORT"}`` when ready.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys

QUIT = b"QUIT"


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    tail = b""
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
            if QUIT in tail + data:
                break
            tail = data[-(len(QUIT) - 1) :]
    writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(echo, "127.0.0.1", port)
    bound = server.sockets[0].getsockname()
    sys.stdout.write(json.dumps({"listening": f"tcp://127.0.0.1:{bound[1]}"}) + "\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args().port))
