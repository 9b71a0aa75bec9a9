"""The edge's DHT publisher on a real libtorrent session: the advert it puts (read back
from another node), what it announces, and the bound and pace of content announces (counted
as the session is asked for them: a burst of announces on a fake clock is more than the
2-node DHT stores and reports)."""

from __future__ import annotations

import secrets
import time
from typing import Any, cast

import libtorrent as lt

from cdn_edge.dht import DhtPublisher, Terms
from cdn_edge.dht.publisher import CONTENT_GAP, MAX_CONTENT_ANNOUNCES, _node_count
from cdn_edge.dht.settings import PRIVATE_BLOCK_RATELIMIT
from requester.dht_keys import MutableItem, get_advert, read_advert
from requester.protocol import BTT_LOCAL, NodeKey, PayerKey, PaymentDomain
from requester.protocol.dht import RENDEZVOUS_TARGET, content_target
from requester.protocol.node_advert import Market
from tests.dht.private_dht import private_dht, wait_alert


def terms(domain: PaymentDomain, reserve: int) -> Terms:
    market = Market(reserve, reserve, 0, 0, 0, 0, 0)
    return Terms(PayerKey.generate().address, BTT_LOCAL, domain, market,
                 ("http://127.0.0.1:8123",), None)  # fmt: skip


def advert_of(alert: Any) -> MutableItem | None:
    return MutableItem.of_alert(alert) if isinstance(alert, lt.dht_mutable_item_alert) else None


class Recording:
    """The edge's session, noting each ``dht_announce`` it is asked for (then doing it)."""

    def __init__(self, session: lt.session) -> None:
        self.session = session
        self.announced: list[tuple[bytes, int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)

    def dht_announce(self, target: lt.sha1_hash, port: int, flags: int) -> None:
        self.announced.append((target.to_bytes(), port))
        self.session.dht_announce(target, port, flags)


def test_the_publisher_puts_the_advert_and_announces_at_most_its_budget(
    domain: PaymentDomain,
) -> None:
    key, start = NodeKey.generate(), time.monotonic()
    served = {secrets.token_bytes(32): start - i for i in range(MAX_CONTENT_ANNOUNCES + 40)}
    served[secrets.token_bytes(32)] = start - 3601  # served over an hour ago: not announced
    current = terms(domain, BTT_LOCAL.one)
    with private_dht(2) as (edge, observer):
        for node in (edge, observer):  # as on an edge with --dht-allow-private: this fake
            node.apply_settings({"dht_block_ratelimit": PRIVATE_BLOCK_RATELIMIT})  # clock bursts
        recording = Recording(edge)
        publisher = DhtPublisher(lambda: cast(lt.session, recording), key, lambda: current, served)
        while _node_count(edge) == 0:  # the observer in its routing table (pytest's timeout)
            time.sleep(0.02)
        publisher.tick(start, int(time.time()))
        publisher.tick(start + CONTENT_GAP / 2, int(time.time()))  # too soon for another
        assert recording.announced == [
            (RENDEZVOUS_TARGET, 8123),
            (content_target(next(iter(served))), 8123),
        ]
        get_advert(observer, key.node_id)
        item = wait_alert(observer, advert_of)
        assert read_advert(item, int(time.time())).market.reserve == BTT_LOCAL.one
        for tick in range(1, len(served) + 5):  # one content per CONTENT_GAP, on a fake clock
            publisher.tick(start + tick * CONTENT_GAP, int(time.time()))
        contents = [target for target, _ in recording.announced[1:]]
        assert contents == [content_target(c) for c in list(served)[:MAX_CONTENT_ANNOUNCES]]

        assert publisher.puts == 1  # same terms: put once
        current = terms(domain, 2 * BTT_LOCAL.one)  # a new price: put at once
        publisher.tick(start + 1000, int(time.time()))
        assert publisher.puts == 2
