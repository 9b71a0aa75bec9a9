"""Range requests for URLs whose responses the edge cannot reuse ("hit-for-pass").

A response with no freshness and no validator is fetched again for every request: for a
plain GET that is the price of being correct, but for a Range request (a phone seeking in
a video) downloading the whole body again to serve 64 KiB of it is waste. So the edge
remembers, for a few minutes, URLs whose last response could not be reused, and passes
one byte range of later requests for them to the origin. What the origin answers (a 206,
or a whole 200 if it ignores ranges) is signed and served like any response, and never
stored. A URL whose response turns reusable is forgotten at its next full fetch.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping

from cdn_edge.content.http_cache import CachePolicy

__all__ = ["NOT_STORED", "PassList", "single_range"]

PASS_SECONDS = 300.0
PASS_URLS = 4096
"""URLs remembered at most (least recently noted ones go first)."""
NOT_STORED = CachePolicy(False, 0, None, None, ())
_SINGLE_RANGE = re.compile(r"bytes=(?:\d{1,19}-\d{0,19}|-\d{1,19})", re.ASCII)


def single_range(headers: Mapping[str, str]) -> str | None:
    """The request's ``Range`` if it is exactly one byte range (``bytes=A-B``, ``A-`` or
    ``-N``, spaces removed); None otherwise, when the edge serves the whole response."""
    value = next((v for k, v in headers.items() if k.lower() == "range"), None)
    if value is None:
        return None
    compact = value.replace(" ", "")
    if not _SINGLE_RANGE.fullmatch(compact):
        return None
    first, _, last = compact[len("bytes=") :].partition("-")
    if first and last and int(first) > int(last):
        return None
    return compact


class PassList:
    """URLs whose last response could not be reused, each until a deadline."""

    def __init__(self) -> None:
        self._until: OrderedDict[str, float] = OrderedDict()

    def note(self, url: str, policy: CachePolicy, now: float) -> None:
        """Record what a full fetch of ``url`` showed."""
        if policy.reusable(now):
            self._until.pop(url, None)
            return
        self._until[url] = now + PASS_SECONDS
        self._until.move_to_end(url)
        while len(self._until) > PASS_URLS:
            self._until.popitem(last=False)

    def passing(self, url: str, now: float) -> bool:
        until = self._until.get(url)
        if until is None:
            return False
        if until <= now:
            del self._until[url]
            return False
        return True
