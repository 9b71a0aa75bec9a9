"""What a ledger URL names (:func:`parse_ledger_url`), and the TRON defaults.

Apart from :mod:`requester.ledger_api` (which re-exports them) so that the settings
declaration, which checks a ``--ledger`` URL and names the default fee limit, does not
import the ledger clients and aiohttp: ``atlas fetch --help`` reads that declaration.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

TRON_NETWORKS = {"nile": "https://nile.trongrid.io", "mainnet": "https://api.trongrid.io"}
"""``tron:NAME`` and the full node it means (TronGrid; an API key from ``TRON_PRO_API_KEY``)."""
DEFAULT_FEE_LIMIT = 50_000_000
"""50 TRX in sun: an open costs ~130k energy, more than tronpy's default limit of 10 TRX."""


@dataclass(frozen=True)
class LedgerTarget:
    """What a ledger URL names: the embedded ledger at ``endpoint``, or a TRON full node
    at ``endpoint`` with the channel contract ``contract`` (None: ask the node)."""

    tron: bool
    endpoint: str
    contract: str | None = None


def parse_ledger_url(url: str) -> LedgerTarget:
    """``http(s)://...``, ``tron+http(s)://HOST:PORT[?contract=T...]`` or
    ``tron:nile``/``tron:mainnet`` (``?contract=`` too); ValueError otherwise."""
    text = url.strip()
    base, _, query = text.partition("?")
    contract = next(iter(parse_qs(query).get("contract", [])), None)
    if base.startswith("tron:") and not base.startswith("tron+"):
        network = base.removeprefix("tron:")
        if network not in TRON_NETWORKS:
            raise ValueError(f"{url!r}: unknown TRON network (tron:nile or tron:mainnet)")
        return LedgerTarget(True, TRON_NETWORKS[network], contract)
    if base.startswith(("tron+http://", "tron+https://")):
        endpoint = base.removeprefix("tron+")
        if not urlsplit(endpoint).hostname:
            raise ValueError(f"{url!r}: no host in the TRON node URL")
        return LedgerTarget(True, endpoint.rstrip("/"), contract)
    if base.startswith(("http://", "https://")) and urlsplit(base).hostname:
        return LedgerTarget(False, text.rstrip("/"))
    raise ValueError(
        f"{url[:80]!r} is not a ledger URL: http(s)://HOST:PORT (embedded ledger), "
        "tron+http(s)://HOST:PORT, tron:nile or tron:mainnet"
    )
