"""Click options generated from a settings declaration (:mod:`requester.settings_spec`).

``@settings_options(EdgeConfig)`` gives a command one option per declared setting (its
flag and aliases, its ``ATLAS_...`` variable, its default and unit shown in ``--help``)
and calls it with the settings object built from what was parsed, instead of one
argument per flag. Each value's source (flag, environment, config file, default) is
read from click's ``ctx.get_parameter_source`` and kept for ``atlas config show``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

import click
from click.core import ParameterSource

from requester.setting_units import (
    SWITCH,
)
from requester.settings import ConfigError
from requester.settings_spec import (
    Collected,
    ConfigFile,
    InvalidSetting,
    Origin,
    Source,
    Spec,
    collect,
    default_of,
    resolve,
    specs,
)

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")
COLLECTED = "atlas.settings.collected"


@dataclass(frozen=True)
class Declared(Generic[S]):
    """What a generated command reads: the declaration, the settings it takes as options,
    and where its config file is (None: it has none)."""

    cls: type[S]
    names: tuple[str, ...]
    config: Callable[[], ConfigFile | None] | None = None

    def collect(self, ctx: click.Context, params: dict[str, Any]) -> Collected:
        """Values and sources: flags and variables as click parsed them, then the rest."""
        given: dict[str, tuple[object, Origin]] = {}
        for spec in self.specs():
            source = ctx.get_parameter_source(spec.name)
            value = params.pop(spec.name)
            if source is ParameterSource.COMMANDLINE:
                given[spec.name] = (value, Origin(Source.FLAG, spec.flag or ""))
            elif source is ParameterSource.ENVIRONMENT:
                given[spec.name] = (value, Origin(Source.ENV, spec.env or ""))
        try:
            config = self.config() if self.config is not None else None
            return collect(self.cls, given, os.environ, config)
        except (InvalidSetting, ConfigError) as exc:  # a variable or the file: not a usage error
            raise click.ClickException(str(exc)) from None

    def specs(self) -> list[Spec]:
        return [s for s in specs(self.cls) if s.name in self.names]


_DECLARED: dict[Callable[..., Any], Declared[Any]] = {}


def declared(command: click.Command) -> Declared[Any] | None:
    """The declaration a command's options were generated from, if they were."""
    return _DECLARED.get(command.callback) if command.callback else None


class UnitType(click.ParamType[Any, str]):
    """A setting's text read by its unit, refused with click's usage error."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.name = spec.unit.metavar.lower()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.spec.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _option(cls: type[Any], spec: Spec, *, show: bool, filed: bool) -> Callable[[Any], Any]:
    decls = [d for d in (spec.flag, *spec.aliases) if d] + [spec.name]
    unit = {"s": "seconds", "h": "hours"}.get(spec.unit.name, spec.unit.name)
    help_ = f"{spec.help}, in {unit}" if unit else spec.help
    common: dict[str, Any] = {
        "envvar": spec.env, "show_envvar": spec.env is not None, "help": help_,
        "metavar": spec.unit.metavar,
    }  # fmt: skip
    if spec.unit is SWITCH:
        del common["metavar"]
        return click.option(*decls, is_flag=True, default=False, **common)
    if spec.required:  # a config file may give it; show leaves it unset
        needed = not show and spec.config_key is None
        return click.option(*decls, type=UnitType(spec), required=needed, **common)
    default = default_of(cls, spec.name)
    if spec.multiple:
        texts = tuple(spec.unit.text(v) for v in default)
        return click.option(*decls, type=UnitType(spec), multiple=True, default=texts,
                            show_default=bool(texts), **common)  # fmt: skip
    text = None if default is None else spec.unit.text(default)
    shown: bool | str = text is not None
    if filed and spec.config_key:  # the file's value, if any, is the real default
        shown = f"{spec.config_key} in the config file" + (f", else {text}" if text else "")
    return click.option(*decls, type=UnitType(spec), default=text, show_default=shown,
                        **common)  # fmt: skip


def settings_options(
    cls: type[S],
    only: Collection[str] | None = None,
    config: Callable[[], ConfigFile | None] | None = None,
) -> Callable[[Callable[Concatenate[S, P], R]], Callable[P, R]]:
    """Options for the settings of ``cls`` that have a flag (those in ``only`` if given);
    the command is called with the settings object first. ``config`` reads the config
    file that fills what no flag or variable gave."""
    chosen = tuple(s.name for s in specs(cls) if s.flag and (only is None or s.name in only))
    what = Declared(cls, chosen, config)

    def decorate(command: Callable[Concatenate[S, P], R]) -> Callable[P, R]:
        @functools.wraps(command)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            ctx = click.get_current_context()
            found = what.collect(ctx, kwargs)
            ctx.meta[COLLECTED] = found
            given = {n: (v, found.origins[n]) for n, v in found.values.items()}
            try:
                settings = resolve(cls, given)
            except InvalidSetting as exc:  # required and not given
                raise click.UsageError(str(exc), ctx) from None
            return command(settings.settings, *args, **kwargs)

        decorated: Callable[P, R] = wrapper
        for spec in reversed(what.specs()):
            decorated = _option(cls, spec, show=False, filed=config is not None)(decorated)
        _DECLARED[decorated] = what
        return decorated

    return decorate


def show_options(what: Declared[Any]) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """The same options for ``atlas config show``: none required, each value's source
    kept in ``ctx.meta`` (:func:`collected`) instead of a settings object."""

    def decorate(command: Callable[..., R]) -> Callable[..., R]:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> R:
            ctx = click.get_current_context()
            ctx.meta[COLLECTED] = what.collect(ctx, kwargs)
            return command(*args, **kwargs)

        decorated: Callable[..., R] = wrapper
        for spec in reversed(what.specs()):
            decorated = _option(what.cls, spec, show=True, filed=what.config is not None)(decorated)
        return decorated

    return decorate


def collected(ctx: click.Context) -> Collected:
    """The values and sources the generated options of this command read."""
    found = ctx.meta[COLLECTED]
    assert isinstance(found, Collected)
    return found
