"""Settings declared once: a dataclass whose fields say their flag, variable, unit and default.

A program's settings are one frozen dataclass. Each field declared with :func:`setting`
carries how people write it: the command-line flag (``--free-mib``), the environment
variable (``ATLAS_FREE_MIB``), optionally a key of a config file, and the :class:`Unit` its
text is in. All three are spelled from the field's name unless a field says otherwise, so
a setting has one name everywhere::

    @dataclass(frozen=True)
    class EdgeConfig:
        free_mib: int = setting(4 * MIB, MIB, "free allowance per requester per 10 minutes")

``--free-mib 2``, ``ATLAS_FREE_MIB=2`` and the default all give ``free_mib == 2 * MIB``:
a value is held in base units (bytes, BTT base units, seconds), converted once when its
text is read; the unit is how it is written and shown. :func:`resolve` picks each value
from the first of flag, environment, config file and default that has it and records
where it came from; the click options of ``requester.cli.options`` are generated from the
same declarations. This module imports no click: the library resolves settings too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

from requester.setting_units import SECONDS, TEXT, WHOLE, Unit

S = TypeVar("S")
SPEC = "atlas.setting"


class InvalidSetting(ValueError):
    """A setting's text is not a value of its unit; the message names the setting and where."""


@dataclass(frozen=True)
class Spec:
    """One declared setting; ``name`` is its field's."""

    name: str
    unit: Unit[Any]
    help: str
    flag: str | None
    env: str | None
    config_key: str | None = None
    multiple: bool = False
    minimum: float | None = None
    maximum: float | None = None
    aliases: tuple[str, ...] = ()
    required: bool = False

    def read(self, text: str, where: str) -> Any:
        """``text`` from ``where`` (a flag, variable or file) as a value, or InvalidSetting."""
        try:
            return self.parse(text)
        except ValueError as exc:
            raise InvalidSetting(f"{where}: {exc}") from None

    def parse(self, text: str) -> Any:
        """``text`` as a value within the bounds, or ValueError saying why not."""
        value = self.unit.parse(text)
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{text.strip()!r} is below {self._bound(value, self.minimum)}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{text.strip()!r} is above {self._bound(value, self.maximum)}")
        return value

    def _bound(self, value: Any, bound: float) -> str:
        return str(self.unit.show(type(value)(bound)))


def setting(
    default: Any = dataclasses.MISSING,
    unit: Unit[Any] = TEXT,
    help: str = "",
    *,
    flag: str | bool = True,
    env: str | bool = True,
    config_key: str | None = None,
    multiple: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    aliases: tuple[str, ...] = (),
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field declared as a setting. ``flag``/``env``: True spells them from the
    field's name (``--free-mib``, ``ATLAS_FREE_MIB``), a string names them, False: none.
    Without a default the setting is required."""
    meta = {SPEC: (unit, help, flag, env, config_key, multiple, minimum, maximum, aliases)}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def specs(cls: type[Any]) -> list[Spec]:
    """The declared settings of a settings dataclass, in field order."""
    found = []
    for f in dataclasses.fields(cls):
        if SPEC not in f.metadata:
            continue
        unit, help_, flag, env, key, multiple, low, high, aliases = f.metadata[SPEC]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        found.append(Spec(
            f.name, unit, help_,
            f"--{f.name.replace('_', '-')}" if flag is True else (flag or None),
            f"ATLAS_{f.name.upper()}" if env is True else (env or None),
            key, multiple, low, high, tuple(aliases), required,
        ))  # fmt: skip
    return found


def default_of(cls: type[Any], name: str) -> Any:
    """The declared default of a setting (its factory's value), or MISSING."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            return f.default
    raise KeyError(name)


class Source(StrEnum):
    FLAG = "flag"
    ENV = "environment"
    CONFIG = "config file"
    DEFAULT = "default"
    MISSING = "not set"


@dataclass(frozen=True)
class Origin:
    """Where a value came from: the source and its name (flag, variable or file path)."""

    source: Source
    where: str = ""

    def __str__(self) -> str:
        return f"{self.source} {self.where}" if self.where else str(self.source)


@dataclass(frozen=True)
class ConfigFile:
    """A config file's path and its values (e.g. ``config.json``)."""

    path: Path
    values: Mapping[str, object]


@dataclass(frozen=True)
class Collected:
    """Each setting's value (a required one not set is absent) and where it came from."""

    values: dict[str, object]
    origins: dict[str, Origin]


@dataclass(frozen=True)
class Resolved(Generic[S]):
    settings: S
    origins: dict[str, Origin]


def collect(
    cls: type[Any],
    given: Mapping[str, tuple[object, Origin]] | None = None,
    environ: Mapping[str, str] | None = None,
    config: ConfigFile | None = None,
) -> Collected:
    """Each setting of ``cls``: a value in ``given`` (already read, e.g. by click), else the
    environment's text, else the config file's, else the default. Raises
    :class:`InvalidSetting` naming a bad value and where it was."""
    given, environ = given or {}, environ or {}
    values: dict[str, object] = {}
    origins: dict[str, Origin] = {}
    for spec in specs(cls):
        if spec.name in given:
            values[spec.name], origins[spec.name] = given[spec.name]
        elif spec.env and environ.get(spec.env):
            values[spec.name] = _from_env(spec, environ[spec.env])
            origins[spec.name] = Origin(Source.ENV, spec.env)
        elif config is not None and spec.config_key and spec.config_key in config.values:
            values[spec.name] = _from_file(spec, config)
            origins[spec.name] = Origin(Source.CONFIG, str(config.path))
        elif spec.required:
            origins[spec.name] = Origin(Source.MISSING)
        else:
            values[spec.name] = default_of(cls, spec.name)
            origins[spec.name] = Origin(Source.DEFAULT)
    return Collected(values, origins)


def resolve(
    cls: type[S],
    given: Mapping[str, tuple[object, Origin]] | None = None,
    environ: Mapping[str, str] | None = None,
    config: ConfigFile | None = None,
    extra: Mapping[str, object] | None = None,
) -> Resolved[S]:
    """The settings object: :func:`collect`'s values, ``extra`` for fields that are not
    settings; a required setting not set is an :class:`InvalidSetting`."""
    found = collect(cls, given, environ, config)
    for spec in specs(cls):
        if spec.name not in found.values:
            raise InvalidSetting(f"{spec.name} is required: pass {_ways(spec)}")
    return Resolved(cls(**found.values, **(extra or {})), found.origins)


def _from_env(spec: Spec, text: str) -> object:
    if spec.multiple:  # like click: items separated by white space
        return tuple(spec.read(item, spec.env or "") for item in text.split())
    return spec.read(text, spec.env or "")


def _from_file(spec: Spec, config: ConfigFile) -> object:
    raw = config.values[spec.config_key or spec.name]
    where = f"{config.path} {spec.config_key}"
    if spec.multiple:
        items = raw if isinstance(raw, list) else [raw]
        return tuple(spec.read(_json_text(item), where) for item in items)
    return spec.read(_json_text(raw), where)


def _json_text(raw: object) -> str:
    return ("true" if raw else "false") if isinstance(raw, bool) else str(raw)


def _ways(spec: Spec) -> str:
    ways = [w for w in (spec.flag, spec.env, spec.config_key and f"{spec.config_key!r}") if w]
    return " or ".join(str(w) for w in ways)


def show_value(spec: Spec, value: object) -> str:
    """A value with its unit (a repeated setting's items joined by spaces)."""
    if spec.multiple and isinstance(value, tuple | list):
        return " ".join(spec.unit.show(v) for v in value) if value else "none"
    return spec.unit.show(value)


def describe(cls: type[Any], found: Collected) -> list[dict[str, str | None]]:
    """One row per setting: name, value with unit, source, flag and variable."""
    rows: list[dict[str, str | None]] = []
    for spec in specs(cls):
        origin = found.origins[spec.name]
        value = found.values.get(spec.name)
        rows.append({
            "name": spec.name,
            "value": None if spec.name not in found.values else show_value(spec, value),
            "source": str(origin.source), "from": origin.where or None,
            "flag": spec.flag, "env": spec.env,
        })  # fmt: skip
    return rows


def header_timeout_setting() -> Any:
    """``--header-timeout``, declared alike by every program that listens."""
    from requester.listener_limits import DEFAULT_HEADER_TIMEOUT

    return setting(DEFAULT_HEADER_TIMEOUT, SECONDS,
                   "time a client has to send a whole request head", minimum=0.1)  # fmt: skip


def max_connections_setting() -> Any:
    """``--max-connections-per-address``, declared alike by every program that listens."""
    from requester.listener_limits import DEFAULT_MAX_PER_ADDRESS

    return setting(DEFAULT_MAX_PER_ADDRESS, WHOLE, "connections one address (IPv4, IPv6 /64) "
                   "may hold open; more are closed", minimum=1)  # fmt: skip
