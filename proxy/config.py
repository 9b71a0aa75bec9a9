"""Settings of ``atlas proxy``, declared once: its options, their ``ATLAS_...`` variables
and ``atlas config show proxy`` come from these fields (:mod:`requester.settings_spec`).

The edges and the ledger come from ``config.json`` unless a flag or a variable names them,
as for ``atlas fetch``. The listeners' host and ports have their own variables
(``ATLAS_PROXY_HOST``, ``ATLAS_PROXY_PORT``, ``ATLAS_API_PORT``), not the servers'
``ATLAS_HOST``/``ATLAS_PORT``: this proxy spends the wallet, so an ``ATLAS_HOST`` meant
for an edge must not open it to the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from proxy.spending import Limits
from requester.channel_manager import DepositPolicy
from requester.dht_nodes import DHT_NODES
from requester.listener_limits import ListenerLimits
from requester.protocol import BTT_LOCAL
from requester.provider_trust import TrustPolicy
from requester.setting_units import (
    BTT_OR_NONE,
    OPTIONAL_TEXT,
    SWITCH,
    TEXT,
    WHOLE,
)
from requester.settings import home_setting
from requester.settings_spec import (
    header_timeout_setting,
    max_connections_setting,
    setting,
)


@dataclass(frozen=True)
class ProxyConfig:
    home: Path = home_setting()  # noqa: RUF009 (a declared setting, like setting())
    host: str = setting("127.0.0.1", TEXT, "address of the proxy and API listeners",
                        env="ATLAS_PROXY_HOST")  # fmt: skip
    port: int = setting(8080, WHOLE, "the browser proxy's port", env="ATLAS_PROXY_PORT",
                        minimum=0, maximum=65535)  # fmt: skip
    api_port: int = setting(8081, WHOLE, "port of the mobile API and status pages",
                            minimum=0, maximum=65535)  # fmt: skip
    edges: tuple[str, ...] = setting(
        (), TEXT, "edge URL (repeat); default from config", flag="--edge", env="ATLAS_EDGE",
        config_key="edges", multiple=True,
    )  # fmt: skip
    bootstrap: str = setting(
        "", DHT_NODES, "find edges (without --edge) and providers through the DHT node at "
        "HOST:PORT[,...] (docs/proxy.md)", config_key="bootstrap",
    )  # fmt: skip
    ledger: str | None = setting(None, OPTIONAL_TEXT, "ledger URL; default from config",
                                 config_key="ledger")  # fmt: skip
    intercept: bool = setting(
        False, SWITCH, "open HTTPS with the proxy's CA and fetch it through edges too"
    )
    max_per_request: int | None = setting(
        5 * BTT_LOCAL.one, BTT_OR_NONE, "what one request may spend ('none' for no limit)"
    )
    max_transfers: int = setting(
        64, WHOLE, "transfers at once; more are answered 503 with Retry-After",
        minimum=1, maximum=10000,
    )  # fmt: skip
    max_per_day: int | None = setting(
        100 * BTT_LOCAL.one, BTT_OR_NONE,
        "what all requests may spend per UTC day ('none' for no limit)",
    )  # fmt: skip
    header_timeout: float = header_timeout_setting()
    max_connections_per_address: int = max_connections_setting()
    trust: TrustPolicy = field(default_factory=TrustPolicy)
    """Limits on providers found through trackers, for each request (a download)."""
    deposit: DepositPolicy = field(default_factory=DepositPolicy)
    """Deposit and lifetime of each channel the proxy opens."""

    @property
    def limits(self) -> Limits:
        return Limits(per_request=self.max_per_request, per_day=self.max_per_day)

    @property
    def listener(self) -> ListenerLimits:
        """Header timeout and per-address cap of the proxy port and the API port."""
        return ListenerLimits(self.header_timeout, self.max_connections_per_address)
