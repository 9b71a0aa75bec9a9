"""Settings of ``atlas ledger serve``, declared once: its options, their ``ATLAS_...``
variables and ``atlas config show ledger`` come from these fields
(:mod:`requester.settings_spec`); the faucet's defaults are :class:`FaucetLimits`'."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdn_edge.ledger.faucet import FaucetLimits
from requester.listener_limits import ListenerLimits
from requester.setting_units import (
    BTT,
    DIRECTORY,
    SWITCH,
    TEXT,
    WHOLE,
)
from requester.settings_spec import (
    header_timeout_setting,
    max_connections_setting,
    setting,
)

FAUCET = FaucetLimits()


@dataclass(frozen=True)
class LedgerSettings:
    data_dir: Path = setting(unit=DIRECTORY, help="where the ledger keeps its database")  # noqa: RUF009 (required)
    host: str = setting("127.0.0.1", TEXT, "address to listen on")
    port: int = setting(0, WHOLE, "0 picks a free port", minimum=0, maximum=65535)
    faucet: bool = setting(
        False, SWITCH, "let clients on this machine mint local BTT (local networks only)"
    )
    faucet_max: int = setting(FAUCET.per_grant, BTT, "largest faucet grant")
    faucet_per_address: int = setting(
        FAUCET.per_address, BTT, "what the faucet gives one address per minute"
    )
    faucet_per_minute: int = setting(
        FAUCET.per_minute, BTT, "what the faucet gives per minute, all addresses together"
    )
    faucet_grants_per_minute: int = setting(
        FAUCET.grants_per_minute, WHOLE, "faucet grants per minute, all addresses together",
        minimum=1,
    )  # fmt: skip
    header_timeout: float = header_timeout_setting()
    max_connections_per_address: int = max_connections_setting()

    def faucet_limits(self) -> FaucetLimits:
        """The faucet's limits; ValueError if they do not fit together."""
        return FaucetLimits(self.faucet_max, self.faucet_per_address, self.faucet_per_minute,
                            self.faucet_grants_per_minute)  # fmt: skip

    @property
    def listener_limits(self) -> ListenerLimits:
        return ListenerLimits(self.header_timeout, self.max_connections_per_address)
