"""The ``atlas`` command.

Subcommands of the SDK live here; those of the edge and the proxy plug in
through the ``atlas.commands`` entry-point group, so this module never imports
``cdn_edge`` or ``proxy`` (an import-linter contract checks it).
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import EntryPoint, entry_points, version
from pathlib import Path

import click

from requester.fetch_command import fetch
from requester.launcher import up
from requester.message_view import describe_message
from requester.protocol import ProtocolError, b64url_decode
from requester.wallet_command import channel, wallet


class AtlasGroup(click.Group):
    """A click group that adds subcommands registered by other packages."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx)) | {ep.name for ep in _plugins()}
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        for ep in _plugins():
            if ep.name == cmd_name:
                loaded = ep.load()
                if isinstance(loaded, click.Command):
                    return loaded
        return None


def _plugins() -> list[EntryPoint]:
    return list(entry_points(group="atlas.commands"))


@click.group(cls=AtlasGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version("atlas-cdn"), prog_name="atlas")
def main() -> None:
    """Atlas: a decentralized HTTP proxy and CDN paid per verified chunk in BTT."""


@main.command()
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


main.add_command(fetch)
main.add_command(wallet)
main.add_command(channel)
main.add_command(up)

if __name__ == "__main__":
    main()
