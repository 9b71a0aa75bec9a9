"""When to ask again a provider whose connection was refused or reset.

An edge that restarts (to change its reserve, to upgrade) refuses connections for a
second or two. That proves nothing about its behaviour, so the download does not drop
it at once: it waits and asks again, with exponential backoff (0.1 s doubling, at most
4 s apart), and gives up only after ``give_up_after`` seconds or ``max_attempts``
failures in a row. A delivered chunk forgets the failures; a provider still failing when
the download ends is reported dropped with its last reason. Only a provider that
delivered a chunk of the download is given this chance (one refusing from the start is
a dead address: dropped at once, see :mod:`requester.downloader`). Faults that prove bad
behaviour (a bad chunk, a bad quote, a refused payment) still drop the provider at
once (:mod:`requester.provider_trust`).
"""

from __future__ import annotations

from dataclasses import dataclass

FIRST_DELAY = 0.1
MAX_DELAY = 4.0
GIVE_UP_AFTER = 30.0
MAX_ATTEMPTS = 20


@dataclass
class _Failing:
    since: float
    attempts: int
    next_try: float
    reason: str = ""


class ProviderBackoff:
    """One download's connection failures per provider (workers of a provider share it)."""

    def __init__(self, give_up_after: float = GIVE_UP_AFTER,
                 max_attempts: int = MAX_ATTEMPTS) -> None:  # fmt: skip
        self.give_up_after = give_up_after
        self.max_attempts = max_attempts
        self._failing: dict[str, _Failing] = {}

    def failed(self, provider: str, now: float, reason: str) -> bool:
        """Note a refused or reset connection; False once the provider should be dropped."""
        state = self._failing.get(provider)
        if state is None:
            state = self._failing[provider] = _Failing(now, 0, now)
        state.attempts, state.reason = state.attempts + 1, reason
        delay = min(FIRST_DELAY * 2 ** (state.attempts - 1), MAX_DELAY)
        state.next_try = max(state.next_try, now + delay)
        return now - state.since < self.give_up_after and state.attempts < self.max_attempts

    def wait(self, provider: str, now: float) -> float:
        """Seconds to wait before asking ``provider`` again (0: ask now)."""
        state = self._failing.get(provider)
        return 0.0 if state is None else max(0.0, state.next_try - now)

    def succeeded(self, provider: str) -> None:
        self._failing.pop(provider, None)

    def failing(self) -> list[str]:
        """Providers whose last request failed to connect."""
        return list(self._failing)

    def describe(self, provider: str, now: float) -> str:
        """Why it is dropped: its last failure, with the attempts and how long they took."""
        state = self._failing.get(provider)
        if state is None:
            return ""
        tries = "attempt" if state.attempts == 1 else "attempts"
        return f"{state.reason} ({state.attempts} {tries} over {now - state.since:.1f} s)"
