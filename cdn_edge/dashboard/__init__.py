"""The edge's dashboard: its status page at ``GET /``, the history behind its plots, the
health probes, and the figures ``/metrics`` reports (docs/operators.md)."""

from cdn_edge.dashboard.routes import DASHBOARD, Dashboard, add_routes, start

__all__ = ["DASHBOARD", "Dashboard", "add_routes", "start"]
