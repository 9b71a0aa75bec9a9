"""Units of settings: how a value is written on the command line, in the environment and
in a config file, and how it is shown (:mod:`requester.settings_spec`).

A unit's ``parse`` reads text into the value a program holds, in base units: BTT amounts
as base units (read exactly as every ``atlas`` amount is, ``requester.protocol``'s
``parse_amount``), MiB and GiB sizes as bytes, times as seconds; ``text`` writes a value
back as it would be typed, and ``name`` is shown after it (``0.001 BTT``, ``4 MiB``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from requester.protocol import BTT_LOCAL, MalformedMessage, format_amount, parse_amount

T = TypeVar("T")
MIB = 1 << 20
GIB = 1 << 30


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
_RATE_SCALES = {"gib/s": GIB, "mib/s": MIB, "kib/s": 1 << 10, "b/s": 1}


def _rate(text: str) -> int:
    """Bytes per second: ``8MiB/s``, ``512KiB/s``, ``1.5GiB/s`` or a whole number of bytes/s."""
    folded = text.strip().lower().replace(" ", "")
    suffix = next((s for s in _RATE_SCALES if folded.endswith(s)), "")
    try:
        value = _number(folded.removesuffix(suffix))
    except ValueError:
        value = -1.0
    if value < 0:
        raise ValueError(f"{text[:40]!r} is not a rate (8MiB/s, 512KiB/s or bytes/s)")
    return int(value * _RATE_SCALES.get(suffix, 1))


def _rate_text(value: int) -> str:
    for name, scale in (("GiB/s", GIB), ("MiB/s", MIB), ("KiB/s", 1 << 10)):
        if value and value % scale == 0:
            return f"{value // scale}{name}"
    return str(value)


RATE: Unit[int] = Unit("", _rate, _rate_text, "RATE")
"""A rate in bytes per second, written ``8MiB/s`` (or a number of bytes/s)."""
DIRECTORY: Unit[Path] = Unit("", _directory, str, "DIRECTORY")
