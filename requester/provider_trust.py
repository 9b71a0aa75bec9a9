"""What one download lets providers it does not know lock up or take.

Anyone can announce signed provider records for any content id, each naming a
fresh payee, and answer 402 with a valid quote: trackers cannot tell a real
provider from one that takes payment and delivers nothing. So a download
trusts the providers the user configured (``--edge``, the config's edges) and
puts every other one on probation until a chunk from it verifies:

- it gets one worker and no payment ahead: at most one chunk's price is signed
  to it (and it may not ask more than the first deposit for one chunk); asked
  to be paid again before it delivered, it is dropped;
- a channel to its payee is opened (or topped up) only while the download's
  allowance lasts (``unknown_channels``, default 2), with a small deposit
  (``unknown_deposit``, default 0.1 BTT); a payee with a channel that has room
  costs nothing from the allowance;
- a provider that faults is dropped and never paid again in the download.

With 20 fake providers, a download locks at most 2 x 0.1 BTT with them and
signs at most one chunk's price to each of two.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from requester.channel_policy import NewChannelAllowance
from requester.protocol import BTT_LOCAL, format_amount

UNKNOWN_CHANNELS = 2
UNKNOWN_DEPOSIT = BTT_LOCAL.one // 10


@dataclass(frozen=True)
class TrustPolicy:
    """The per-download limits for providers the user did not configure."""

    unknown_channels: int = UNKNOWN_CHANNELS
    """Channels a download may open (or top up) to payees of unknown providers."""
    unknown_deposit: int = UNKNOWN_DEPOSIT
    """Deposit of each such channel; also the most an unknown provider may ask per chunk."""


class ProviderTrust:
    """One download's view of its providers: known, proven, on probation, or dropped."""

    def __init__(self, known: Iterable[str], policy: TrustPolicy | None = None) -> None:
        self.policy = policy or TrustPolicy()
        self.allowance = NewChannelAllowance(self.policy.unknown_channels,
                                             self.policy.unknown_deposit)  # fmt: skip
        self._known = {url.rstrip("/") for url in known}
        self._proven: set[str] = set()
        self._dropped: set[str] = set()
        self._paid: set[str] = set()
        """Providers on probation that were signed a payment (one chunk's price)."""

    def on_probation(self, provider: str) -> bool:
        """Not configured by the user, and no chunk from it verified yet."""
        url = provider.rstrip("/")
        return url not in self._known and url not in self._proven

    def dropped(self, provider: str) -> bool:
        return provider.rstrip("/") in self._dropped

    def proven(self, provider: str) -> None:
        """A chunk from ``provider`` verified: it holds the content, pay it as any."""
        self._proven.add(provider.rstrip("/"))

    def drop(self, provider: str) -> None:
        self._dropped.add(provider.rstrip("/"))

    def claim_payment(self, provider: str, price: int) -> str | None:
        """Why ``provider`` may not be paid ``price`` now, or None (and it is noted as paid).

        Noted before the payment is made, so two requests cannot both pass.
        """
        url = provider.rstrip("/")
        if url in self._dropped:
            return "dropped earlier in this download: paid nothing more"
        if not self.on_probation(url):
            return None
        if url in self._paid:
            return (
                "asked to be paid again before any chunk from it verified "
                "(providers found through trackers are paid one chunk at a time)"
            )
        if price > self.policy.unknown_deposit:
            most = format_amount(self.policy.unknown_deposit, BTT_LOCAL)
            return (
                f"asks {format_amount(price, BTT_LOCAL)} for one chunk; a provider found "
                f"through a tracker may ask at most {most} (unknown_deposit)"
            )
        self._paid.add(url)
        return None
