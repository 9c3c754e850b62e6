"""The operator dashboard at ``GET /dashboard``: server-rendered pages over the tracker's and
the store's reads, refreshed in place, charts drawn with the vendored uPlot (static/vendor)."""

from proxy.dashboard.routes import dashboard_routes

__all__ = ["dashboard_routes"]
