"""The edge's libtorrent session with and without ``--dht`` (a real session, in process):
only the operator's bootstrap nodes, LSD/UPnP/NAT-PMP off, and private DHT nodes only
when allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdn_edge.config import EdgeConfig
from cdn_edge.dht import dht_settings
from cdn_edge.torrent import TorrentSession
from requester.dht_nodes import DHT_NODES, parse_nodes


async def settings_of(tmp_path: Path, **options: object) -> dict[str, object]:
    config = EdgeConfig(data_dir=tmp_path, ledger="http://127.0.0.1:9", **options)  # type: ignore[arg-type]
    session = TorrentSession(tmp_path / "torrents", settings=dht_settings(config, {}))
    async with session:
        return session.lt_settings()


async def test_dht_uses_only_the_bootstrap_nodes_given_and_no_other_discovery(
    tmp_path: Path,
) -> None:
    given = DHT_NODES.parse("127.0.0.1:6881, 127.0.0.2:6882")
    found = await settings_of(tmp_path, dht=True, dht_bootstrap=given, dht_allow_private=True)
    assert found["enable_dht"] is True
    assert found["dht_bootstrap_nodes"] == "127.0.0.1:6881,127.0.0.2:6882"
    assert (found["enable_lsd"], found["enable_upnp"], found["enable_natpmp"]) == (False,) * 3
    assert found["apply_filter_to_dht"] is False
    assert int(str(found["dht_upload_rate_limit"])) > 8000  # libtorrent drops queries over it


async def test_without_allowance_the_private_address_filter_covers_the_dht(
    tmp_path: Path,
) -> None:
    found = await settings_of(tmp_path, dht=True)
    assert found["dht_bootstrap_nodes"] == ""  # no public default: wait to be contacted
    assert found["apply_filter_to_dht"] is True
    assert found["dht_restrict_routing_ips"] is True


async def test_without_dht_the_session_has_none(tmp_path: Path) -> None:
    found = await settings_of(tmp_path)
    assert found["enable_dht"] is False
    assert found["dht_bootstrap_nodes"] == ""


@pytest.mark.parametrize("text", ["host", "127.0.0.1:0", "127.0.0.1:70000", "[zz]:1", ":1"])
def test_a_malformed_node_list_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not HOST:PORT"):
        parse_nodes(text)


def test_node_lists_read_ipv6_and_drop_blanks() -> None:
    assert parse_nodes("[::1]:5, ,a.example:6") == (("::1", 5), ("a.example", 6))
    assert DHT_NODES.parse(" [::1]:5 ") == "[::1]:5"
