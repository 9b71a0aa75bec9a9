"""HTTP caching rules for a shared cache (RFC 9111), as pure functions.

The edge is a shared cache: ``private`` and ``no-store`` responses are never
stored, ``s-maxage`` wins over ``max-age``, requests with ``Authorization``
are stored only when the response says so, and ``Vary`` selects which request
headers are part of the cache key (``Vary: *`` is never stored).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

HEURISTIC_FRACTION = 0.1
HEURISTIC_MAX = 24 * 3600
CACHEABLE_BY_DEFAULT = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})


def cache_control(headers: Iterable[tuple[str, str]]) -> dict[str, str | None]:
    """Directives of every Cache-Control header, lower-cased; values unquoted."""
    out: dict[str, str | None] = {}
    for name, value in headers:
        if name.lower() != "cache-control":
            continue
        for part in value.split(","):
            key, sep, arg = part.strip().partition("=")
            if key:
                out[key.lower()] = arg.strip().strip('"') if sep else None
    return out


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    return next((v for n, v in headers if n.lower() == name), None)


def _seconds(value: str | None) -> int | None:
    # ASCII only (isdigit() admits "²", which int() refuses); a huge number is just large.
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    return min(int(value), 2**31) if len(value) <= 11 else 2**31


def _date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


@dataclass(frozen=True)
class CachePolicy:
    """What the cache may do with one response."""

    storable: bool
    fresh_until: float
    """Serve without asking the origin until then; 0 = revalidate every time."""
    etag: str | None
    last_modified: str | None
    vary: tuple[str, ...]

    @property
    def revalidatable(self) -> bool:
        return bool(self.etag or self.last_modified)

    def reusable(self, now: float) -> bool:
        """Whether a later request could be served from this response: fresh, or stored
        with a validator to revalidate it."""
        return self.storable and (self.fresh_until > now or self.revalidatable)


def policy(
    status: int,
    request_headers: Mapping[str, str],
    response_headers: list[tuple[str, str]],
    now: float,
) -> CachePolicy:
    cc = cache_control(response_headers)
    vary = tuple(
        sorted(
            {
                v.strip().lower()
                for n, value in response_headers
                if n.lower() == "vary"
                for v in value.split(",")
                if v.strip()
            }
        )
    )
    etag = _header(response_headers, "etag")
    last_modified = _header(response_headers, "last-modified")
    explicit = "s-maxage" in cc or "max-age" in cc or _header(response_headers, "expires")
    storable = (
        "no-store" not in cc
        and "private" not in cc
        and "*" not in vary
        and (status in CACHEABLE_BY_DEFAULT or bool(explicit) or "public" in cc)
        and (
            not any(k.lower() == "authorization" for k in request_headers)
            or "public" in cc
            or "s-maxage" in cc
        )
    )
    return CachePolicy(
        storable, now + _lifetime(cc, response_headers, now), etag, last_modified, vary
    )


def _lifetime(cc: dict[str, str | None], headers: list[tuple[str, str]], now: float) -> float:
    if "no-cache" in cc:
        return 0
    for directive in ("s-maxage", "max-age"):
        if directive in cc:
            return _seconds(cc[directive]) or 0
    date = _date(_header(headers, "date")) or now
    expires_raw = _header(headers, "expires")
    if expires_raw is not None:
        expires = _date(expires_raw)
        return max(0.0, expires - date) if expires is not None else 0
    modified = _date(_header(headers, "last-modified"))
    if modified is not None and modified < date:
        return min(HEURISTIC_FRACTION * (date - modified), HEURISTIC_MAX)
    return 0


def cache_key(url: str, vary: Iterable[str], request_headers: Mapping[str, str]) -> str:
    """The key for a URL under the request headers its response varies on."""
    lowered = {k.lower(): v for k, v in request_headers.items()}
    selected = [[name, lowered.get(name, "")] for name in sorted(vary)]
    raw = json.dumps([url, selected], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def conditional_headers(policy_: CachePolicy) -> dict[str, str]:
    """Headers that turn a refetch into a revalidation."""
    headers: dict[str, str] = {}
    if policy_.etag:
        headers["If-None-Match"] = policy_.etag
    if policy_.last_modified:
        headers["If-Modified-Since"] = policy_.last_modified
    return headers
