"""The ``atlas`` command group.

The SDK's own subcommands are listed here by the module that defines each, and a
module is imported only when its command runs or a help page lists it: ``atlas
fetch`` does not pay for ``atlas wallet``'s or ``atlas config``'s imports (the
whole CLI took 0.33 s of CPU to start before). A command that runs may have heavy
libraries imported in a thread meanwhile (:data:`WARM`). Those of the edge, the proxy and
the launcher (``atlas up``) plug in through the ``atlas.commands`` entry-point
group, so the CLI never imports ``cdn_edge``, ``proxy`` or ``launcher`` (the
import-linter contracts check it).
"""

from __future__ import annotations

import threading
from contextlib import suppress
from importlib import import_module
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

COMMANDS: dict[str, tuple[str, str]] = {
    "channel": ("requester.cli.wallet", "channel"),
    "config": ("requester.cli.config_show", "config"),
    "decode": ("requester.cli.decode", "decode"),
    "fetch": ("requester.cli.fetch", "fetch"),
    "status": ("requester.cli.status", "status"),
    "wallet": ("requester.cli.wallet", "wallet"),
}
"""Each SDK subcommand: the module that defines it and the command's name there."""
WARM: dict[str, tuple[str, ...]] = {"fetch": ("aiohttp",)}
"""Libraries a command's run imports that load in a thread while the command's own work
goes on. ``atlas fetch`` unlocks the wallet first (:func:`requester.cli.fetch.unlock`):
argon2id, 64 MiB and ~0.1 s of CPU for a wallet made by ``atlas wallet new``, runs in
libsodium without the GIL while aiohttp's import (~0.2 s) holds it. Python work does not
overlap (the GIL), and neither does aiohttp's CA bundle loading: CPython 3.11's
``set_default_verify_paths`` keeps the GIL (measured: a thread building TLS contexts and
a Python loop took the sum of their times)."""
HELP = frozenset({"-h", "--help"})


class AtlasGroup(click.Group):
    """A click group that imports each SDK subcommand on first use and adds the
    subcommands registered by other packages."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx)) | set(COMMANDS) | {ep.name for ep in _plugins()}
        return sorted(names)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in WARM and not HELP.intersection(args[1:]):
            warm(WARM[args[0]])
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        if cmd_name in COMMANDS:
            module, name = COMMANDS[cmd_name]
            command = getattr(import_module(module), name)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
            return command
        for ep in _plugins():
            if ep.name == cmd_name:
                loaded = ep.load()
                if isinstance(loaded, click.Command):
                    return loaded
        return None


def warm(modules: tuple[str, ...]) -> threading.Thread:
    """Import ``modules`` in a daemon thread (a failure is left for the command's own import
    to raise); an import of one of them elsewhere meanwhile waits for it, as Python's
    per-module import locks make it."""

    def load() -> None:
        for name in modules:
            with suppress(Exception):  # raised again by the import that really needs it
                import_module(name)

    thread = threading.Thread(target=load, name="atlas-warm", daemon=True)
    thread.start()
    return thread


def _plugins() -> list[EntryPoint]:
    from importlib.metadata import entry_points  # ~25 ms: only for help and plugin commands

    return list(entry_points(group="atlas.commands"))


@click.group(cls=AtlasGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="atlas-cdn", prog_name="atlas")
def main() -> None:
    """Atlas: a decentralized HTTP proxy and CDN paid per verified chunk in BTT."""
