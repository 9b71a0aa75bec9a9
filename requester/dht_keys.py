"""libtorrent's side of node adverts: putting ours, and reading others' from its alerts.

An edge publishes its advert with libtorrent's ``dht_put_mutable_item``, which
wants the 64-byte expanded secret of the node key
(:func:`requester.protocol.dht.libtorrent_secret`), bencodes the bytes itself
and signs the BEP 44 buffer; its signatures are byte for byte PyNaCl's
(tests/dht/test_bep44_keys.py). Results come back as alerts, which die at the
next ``pop_alerts``: :meth:`MutableItem.of_alert` copies one out at once, and
:func:`read_advert` checks it with PyNaCl only, like any requester would.
"""

from __future__ import annotations

from dataclasses import dataclass

import libtorrent as lt

from requester.protocol.dht import (
    MAX_BEP44_STRING,
    NODE_ADVERT_SALT,
    bencoded_string,
    libtorrent_secret,
    verify_mutable_item,
)
from requester.protocol.errors import MalformedMessage, WrongBinding
from requester.protocol.identity import NodeId, NodeKey
from requester.protocol.node_advert import NodeAdvert


def put_advert(session: lt.session, key: NodeKey, advert: NodeAdvert) -> None:
    """Ask libtorrent to store ``advert`` under ``key``; a ``dht_put_alert`` reports the result.

    libtorrent picks the sequence number: one above the highest it finds stored."""
    if advert.node_id != key.node_id:
        raise WrongBinding(f"advert of {advert.node_id} cannot be put under {key.node_id}")
    data = advert.encode()
    if len(data) > MAX_BEP44_STRING:  # NodeAdvert refuses larger ones; a guard for libtorrent
        raise MalformedMessage(f"advert of {len(data)} bytes does not fit a BEP 44 value")
    session.dht_put_mutable_item(
        libtorrent_secret(key.seed), key.node_id.raw, data, NODE_ADVERT_SALT
    )


def get_advert(session: lt.session, node_id: NodeId) -> None:
    """Ask libtorrent for ``node_id``'s advert; ``dht_mutable_item_alert``\\ s bring it."""
    session.dht_get_mutable_item(node_id.raw, NODE_ADVERT_SALT)


@dataclass(frozen=True, slots=True)
class MutableItem:
    """A BEP 44 mutable item copied out of a ``dht_mutable_item_alert``."""

    key: bytes
    salt: bytes
    seq: int
    value: bytes
    """The item's ``v`` decoded: our adverts are byte strings."""
    signature: bytes
    authoritative: bool
    """libtorrent's word that the lookup has ended (the last alert of a get)."""

    @classmethod
    def of_alert(cls, alert: lt.dht_mutable_item_alert) -> MutableItem | None:
        """The item, or None when nothing was found (seq 0, empty item) or ``v`` is
        not a byte string (not one of ours)."""
        item = alert.item
        if not isinstance(item, bytes) or (alert.seq == 0 and not item):
            return None
        return cls(
            bytes(alert.key), bytes(alert.salt), int(alert.seq), item,
            bytes(alert.signature), bool(alert.authoritative),
        )  # fmt: skip


def read_advert(item: MutableItem, now: int) -> NodeAdvert:
    """The advert in ``item``, checked with PyNaCl: the BEP 44 signature by the item's key over
    salt, seq and value, then the advert's own signature, node id (the item's key) and expiry."""
    if item.salt != NODE_ADVERT_SALT:
        raise WrongBinding(f"BEP 44 item with salt {item.salt[:64]!r} is not a node advert")
    node_id = NodeId(item.key)
    verify_mutable_item(node_id, item.salt, item.seq, bencoded_string(item.value), item.signature)
    return NodeAdvert.decode(item.value, now, node_id)
