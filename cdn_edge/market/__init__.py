"""The BTT market of an edge with limited upload capacity (docs/market.md): bids, rounds,
paid slots and the free lane."""

from cdn_edge.market.lanes import FREE, PAID, Lanes, Ticket
from cdn_edge.market.market import Market

__all__ = ["FREE", "PAID", "Lanes", "Market", "Ticket"]
