"""The ``atlas`` command group.

The SDK's own subcommands are added here; those of the edge, the proxy and the
launcher (``atlas up``) plug in through the ``atlas.commands`` entry-point
group, so the CLI never imports ``cdn_edge``, ``proxy`` or ``launcher`` (the
import-linter contracts check it).
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points, version

import click

from requester.cli.config_show import config
from requester.cli.decode import decode
from requester.cli.fetch import fetch
from requester.cli.status import status
from requester.cli.wallet import channel, wallet


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


main.add_command(decode)
main.add_command(fetch)
main.add_command(wallet)
main.add_command(channel)
main.add_command(config)
main.add_command(status)
