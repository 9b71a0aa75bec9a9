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
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

from requester.protocol import BTT_LOCAL, MalformedMessage, format_amount, parse_amount

T = TypeVar("T")
S = TypeVar("S")
SPEC = "atlas.setting"
MIB = 1 << 20
GIB = 1 << 30


class InvalidSetting(ValueError):
    """A setting's text is not a value of its unit; the message names the setting and where."""


@dataclass(frozen=True)
class Unit(Generic[T]):
    """How a setting is written: ``parse`` reads text (raising ValueError with the reason),
    ``text`` writes a value back as it would be typed, ``name`` is shown after it."""

    name: str
    parse: Callable[[str], T]
    text: Callable[[T], str] = str
    metavar: str = "TEXT"

    def show(self, value: T) -> str:
        """The value with its unit, for people (``0.001 BTT``, ``4 MiB``, ``30 s``)."""
        if value is None:
            return "none"
        written = self.text(value)
        return f"{written} {self.name}" if self.name else written


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _whole(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a whole number") from None


def _btt(text: str) -> int:
    """Same text as every ``atlas`` amount flag (``requester.cli`` amounts): exact decimals."""
    try:
        return parse_amount(text, BTT_LOCAL)
    except MalformedMessage as exc:
        raise ValueError(exc.message) from None


def btt_text(units: int) -> str:
    return format_amount(units, BTT_LOCAL).removesuffix(f" {BTT_LOCAL.symbol}")


def _btt_or_none(text: str) -> int | None:
    return None if text.strip().lower() == "none" else _btt(text)


def _checked_btt(text: str) -> str:
    """An amount kept as written (the library reads it later), checked now."""
    _btt(text)
    return text


def _checked_btt_or_none(text: str) -> str:
    if text.strip().lower() != "none":
        _btt(text)
    return text


def _sized(scale: int) -> Unit[int]:
    name = {MIB: "MiB", GIB: "GiB"}[scale]
    return Unit(name, lambda t: int(_number(t) * scale), lambda v: f"{v / scale:g}", name.upper())


def _bool(text: str) -> bool:
    folded = text.strip().lower()
    if folded in {"1", "true", "t", "yes", "y", "on"}:
        return True
    if folded in {"0", "false", "f", "no", "n", "off", ""}:
        return False
    raise ValueError(f"{text[:40]!r} is not a boolean (true or false)")


TEXT: Unit[str] = Unit("", str)
OPTIONAL_TEXT: Unit[str | None] = Unit("", lambda t: t or None, lambda v: v or "")
"""Text where an empty value means none (``"ledger": ""`` in config.json)."""
WHOLE: Unit[int] = Unit("", _whole, str, "INTEGER")
SWITCH: Unit[bool] = Unit("", _bool, lambda v: "true" if v else "false", "BOOLEAN")
PATH: Unit[Path] = Unit("", Path, str, "PATH")
SECONDS: Unit[float] = Unit("s", _number, lambda v: f"{v:g}", "SECONDS")
HOURS: Unit[float] = Unit("h", _number, lambda v: f"{v:g}", "HOURS")
MIB_SIZE = _sized(MIB)
GIB_SIZE = _sized(GIB)
BTT: Unit[int] = Unit("BTT", _btt, btt_text, "BTT")
"""An amount of BTT, held in base units."""
BTT_OR_NONE: Unit[int | None] = Unit(
    "BTT", _btt_or_none, lambda v: "none" if v is None else btt_text(v), "BTT"
)
"""A limit in BTT held in base units; ``none`` (None) for no limit."""
BTT_TEXT: Unit[str] = Unit("BTT", _checked_btt, str, "BTT")
"""An amount of BTT checked but kept as written, for settings the library reads later."""
BTT_LIMIT: Unit[str] = Unit("BTT", _checked_btt_or_none, str, "BTT")
"""A limit in BTT, or ``none``, kept as written."""


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


def _positive_btt(text: str) -> int:
    units = _btt(text)
    if units <= 0:
        raise ValueError("must be more than 0 BTT")
    return units


def _directory(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{text!r} is a file, not a directory")
    return path


POSITIVE_BTT: Unit[int] = Unit("BTT", _positive_btt, btt_text, "BTT")
DIRECTORY: Unit[Path] = Unit("", _directory, str, "DIRECTORY")


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
