"""``atlas config show [PROGRAM] [OPTIONS]``: a program's effective settings, each with
its value, unit and source (flag, environment variable, config file, default).

PROGRAM is ``requester`` (the default: what ``atlas fetch``, ``atlas channel`` and
``atlas wallet`` use), ``edge``, ``ledger``, ``proxy`` or ``up``. Each takes that
program's own options, generated from the same declaration as the program's, so a flag
given here shows as the flag. The other programs' declarations are found through their
``atlas`` plugin commands, so this module imports none of them.
"""

from __future__ import annotations

import json
from typing import Any

import click

from requester.cli.options import Declared, collected, declared, show_options
from requester.settings import Settings, read_config
from requester.settings_spec import describe, specs

PROGRAMS: dict[str, tuple[str, ...]] = {
    "requester": (), "edge": ("edge", "serve"), "ledger": ("ledger", "serve"),
    "proxy": ("proxy",), "up": ("up",), "tron-node": ("ledger", "tron-node"),
}  # fmt: skip
"""Each program, and the command whose settings it shows (the requester's are the SDK's)."""
WHAT = {
    "requester": "atlas fetch, atlas channel and atlas wallet",
    "edge": "atlas edge serve", "ledger": "atlas ledger serve", "proxy": "atlas proxy",
    "up": "atlas up", "tron-node": "atlas ledger tron-node",
}  # fmt: skip


def _declaration(ctx: click.Context, program: str) -> Declared[Any] | None:
    path = PROGRAMS[program]
    if not path:
        names = tuple(s.name for s in specs(Settings) if s.flag)
        return Declared(Settings, names, read_config)
    root = ctx.find_root()
    command: click.Command | None = root.command
    for name in path:
        if not isinstance(command, click.Group):
            return None
        command = command.get_command(root, name)
    return declared(command) if command is not None else None


def _show(program: str, what: Declared[Any]) -> click.Command:
    @click.command(program, help=f"The settings of {WHAT[program]}, and where each came from.")
    @click.option("--json", "as_json", is_flag=True, help="print one JSON object")
    @show_options(what)
    def show(as_json: bool) -> None:
        found = collected(click.get_current_context())
        rows = describe(what.cls, found)
        if as_json:
            click.echo(json.dumps({
                "program": program,
                "settings": {r["name"]: {k: v for k, v in r.items() if k != "name"} for r in rows},
            }))  # fmt: skip
            return
        width = max(len(str(r["name"])) for r in rows)
        shown = [r["value"] or "-" for r in rows]
        value_width = max(len(str(v)) for v in shown)
        for row, value in zip(rows, shown, strict=True):
            where = f"{row['source']} {row['from']}" if row["from"] else row["source"]
            click.echo(f"{row['name']:<{width}}  {value:<{value_width}}  {where}")

    return show


class ShowGroup(click.Group):
    """``show`` with a program name, ``requester`` if none is given."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(PROGRAMS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in PROGRAMS:
            return None
        what = _declaration(ctx, cmd_name)
        return None if what is None else _show(cmd_name, what)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in PROGRAMS and args[0] not in ctx.help_option_names):
            args = ["requester", *args]
        return super().parse_args(ctx, args)


@click.group("config")
def config() -> None:
    """Atlas settings: what is in effect, and where it came from."""


@config.group("show", cls=ShowGroup, subcommand_metavar="[PROGRAM] [FLAGS]...")
def show() -> None:
    """Print a program's settings (PROGRAM: requester, the default, edge, ledger, proxy, up,
    tron-node):
    each value with its unit and its source: flag, environment variable, config file or
    default. Takes the program's own options; --json prints one JSON object."""
