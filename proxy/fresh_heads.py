"""Heads of small objects the proxy may reuse without asking the edge again.

Every request through Atlas starts with the edge's ``/v1/fetch``: a round trip
that, for a cached page asset, only returns the signed head (and seal) it
returned last time. The edge answers a stored response from its store while
the origin's explicit ``max-age`` (or ``s-maxage``) runs from when it fetched
it, which is the head's signed ``created_at``. So for that long, at most
:data:`REUSE_SECONDS` from when the proxy last asked, the proxy opens the
download from the head and seal it verified then (``AtlasClient.reopen``):
every chunk is still fetched, paid and checked against that head. Only a
200 with no ``Vary``, no ``no-cache``, ``no-store`` or ``private`` qualifies,
and only a sealed one-chunk content answered in place (proxy/in_place.py); a
reload (the browser's ``no-cache``) or a request with ``Authorization`` always
asks the edge.
A reused download that fails is asked for again through ``/v1/fetch``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from requester.client import Download
from requester.protocol import ManifestHead, Seal

REUSE_SECONDS = 30.0
"""Longest reuse of a head after its ``/v1/fetch``: bounds what a purge at the edge, or a
clock ahead of the edge's, can let through."""
KEPT = 256
"""Heads kept at most (the oldest goes first)."""
NOT_REUSED = frozenset({"no-cache", "no-store", "private"})
RELOAD = frozenset({b"no-cache", b"no-store", b"max-age=0"})
"""Request directives that ask for the edge's own answer (a reload)."""


def reusable_request(fields: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request with these header fields (name, value: mitmproxy's raw
    ``Headers.fields``, read once, not one look-up per name) may be answered from a reused
    head: not a reload (``Cache-Control: no-cache``, ``no-store`` or ``max-age=0``;
    ``Pragma: no-cache``), which asks for the edge's own answer, and not one with
    ``Authorization``, which a shared cache answers only as the edge decides."""
    for name, value in fields:
        lower = name.lower()
        if lower == b"authorization":
            return False
        if lower in (b"cache-control", b"pragma"):
            for part in value.split(b","):
                if part.strip().lower().replace(b" ", b"") in RELOAD:
                    return False
    return True


@dataclass(frozen=True, slots=True)
class Fresh:
    head: ManifestHead
    seal: Seal
    origin: str
    until: float


def origin_fresh_until(head: ManifestHead) -> float:
    """When the edge stops answering this head as fresh from the origin's explicit
    freshness (0: never reuse it)."""
    if head.status != 200:
        return 0.0
    directives: dict[str, str] = {}
    for name, value in head.headers:
        if name == "vary":
            return 0.0
        if name == "cache-control":
            for part in value.split(","):
                key, _, arg = part.strip().partition("=")
                directives[key.strip().lower()] = arg.strip().strip('"')
    if NOT_REUSED & directives.keys():
        return 0.0
    age = directives.get("s-maxage", directives.get("max-age", ""))
    return float(head.created_at + int(age)) if age.isascii() and age.isdigit() else 0.0


class FreshHeads:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._kept: dict[tuple[str, str | None], Fresh] = {}

    def get(self, url: str, file: str | None) -> Fresh | None:
        fresh = self._kept.get((url, file))
        if fresh is not None and self._clock() >= fresh.until:
            del self._kept[(url, file)]
            return None
        return fresh

    def remember(self, url: str, file: str | None, download: Download) -> None:
        """Keep ``download``'s verified head and seal if the edge would answer them again."""
        seal = download.scheduler.verifier.seal
        now = self._clock()
        until = min(origin_fresh_until(download.head), now + REUSE_SECONDS)
        if seal is None or until <= now:
            return
        self._kept.pop((url, file), None)
        if len(self._kept) >= KEPT:
            del self._kept[next(iter(self._kept))]
        self._kept[(url, file)] = Fresh(download.head, seal, download.origin_edge, until)

    def forget(self, url: str, file: str | None) -> None:
        self._kept.pop((url, file), None)
