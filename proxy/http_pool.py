"""The pooled HTTP client sessions the upstream paths send requests with."""

from __future__ import annotations

import aiohttp


def pooled_session() -> aiohttp.ClientSession:
    """A session with an unbounded keep-alive pool (60 s idle), DNS cached 5 min, gzip decoded.

    Open it on the running loop (in ``start``) and close it in ``close``.
    """
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
    return aiohttp.ClientSession(connector=connector, auto_decompress=True)
