"""``atlas decode``: show what an Atlas message says, and whether it verifies."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from requester.message_view import describe_message
from requester.protocol import ProtocolError, b64url_decode


@click.command()
@click.argument("message", default="-")
def decode(message: str) -> None:
    """Decode and verify an Atlas message (manifest head, quote or voucher).

    MESSAGE is base64url text (as in an HTTP header), a path to a file with
    the raw bytes, or - to read base64url from standard input. Prints JSON;
    exits 2 with the protocol's reason if it does not decode or verify.
    """
    try:
        raw = _read_message(message)
        view = describe_message(raw)
    except ProtocolError as exc:
        click.echo(json.dumps(exc.problem()), err=True)
        sys.exit(2)
    click.echo(json.dumps(view, indent=2))


def _read_message(message: str) -> bytes:
    limit = 64 * 1024
    if message == "-":
        return b64url_decode(sys.stdin.read(limit * 2), limit, "message")
    try:
        with Path(message).open("rb") as handle:
            return handle.read(limit + 1)
    except OSError:
        return b64url_decode(message, limit, "message")
