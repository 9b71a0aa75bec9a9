"""What a fuzz target is, the oracle every target is judged by, and the registry.

A target takes one byte string and feeds it to a decoder or parser the way the
network would. The oracle is the project's rule for untrusted input: a refusal is
one of the documented error types (a :class:`Refusal`, the wire protocol's or a
server's own, or the few a target names), never anything else. Some targets add a stronger check
(decoded bytes equal a reference decoder's; an HTTP answer is a 4xx problem, not a
500); those raise :class:`OracleViolation`. Anything that escapes :func:`run_one`
is a crash.

Targets are plain functions of bytes, so the same registry runs under atheris
(``make fuzz``, tests/fuzz/run.py) and under hypothesis in CI
(tests/protocol/test_decoders_hostile.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from requester.errors import Refusal

Seeds = Callable[[], Iterator[bytes]]


class OracleViolation(AssertionError):
    """A target's own check failed: wrong bytes accepted, a 500, an impossible result."""


@dataclass(frozen=True)
class Target:
    name: str
    fn: Callable[[bytes], None]
    """Feeds one input; returns normally or raises one of ``allowed``."""
    allowed: tuple[type[BaseException], ...]
    seeds: Seeds
    covered_by: str | None = None
    """The existing CI property test that already applies this oracle, if any."""
    doc: str = field(default="")


TARGETS: dict[str, Target] = {}


def target(
    name: str,
    *,
    seeds: Seeds,
    allowed: tuple[type[BaseException], ...] = (Refusal,),
    covered_by: str | None = None,
) -> Callable[[Callable[[bytes], None]], Callable[[bytes], None]]:
    """Register ``fn`` as the fuzz target ``name``."""

    def register(fn: Callable[[bytes], None]) -> Callable[[bytes], None]:
        if name in TARGETS:
            raise ValueError(f"fuzz target {name!r} registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        TARGETS[name] = Target(name, fn, allowed, seeds, covered_by, doc)
        return fn

    return register


def run_one(t: Target, data: bytes) -> None:
    """Apply the oracle to one input: an allowed refusal is fine, anything else escapes."""
    with contextlib.suppress(*t.allowed):
        t.fn(data)


class Fields:
    """Cuts one fuzz input into the fields a structured target needs, deterministically.

    atheris has ``FuzzedDataProvider``; this does the same small job without atheris,
    so hypothesis runs the very same targets in CI.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def u8(self) -> int:
        if self._pos >= len(self._data):
            return 0
        self._pos += 1
        return self._data[self._pos - 1]

    def u16(self) -> int:
        return self.u8() << 8 | self.u8()

    def pick(self, options: int) -> int:
        return self.u8() % options

    def blob(self, limit: int = 1 << 16) -> bytes:
        """A length-prefixed (u16) piece, cut to what is left and to ``limit``."""
        size = min(self.u16(), limit)
        piece = self._data[self._pos : self._pos + size]
        self._pos += len(piece)
        return piece

    def text(self, limit: int = 1 << 16) -> str:
        return self.blob(limit).decode("utf-8", "surrogateescape")

    def rest(self) -> bytes:
        piece = self._data[self._pos :]
        self._pos = len(self._data)
        return piece

    def splits(self, data: bytes) -> Iterator[bytes]:
        """``data`` in pieces whose sizes the input picks (1-256 bytes each)."""
        start = 0
        while start < len(data):
            size = self.u8() + 1
            yield data[start : start + size]
            start += size
