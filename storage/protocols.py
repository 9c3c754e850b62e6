"""What every posterior store and bookkeeping backend offers beyond ``PosteriorStore``.

Capabilities are declared here and implemented by each backend (embedded and Redis), so
wiring and tools call them directly instead of testing types or looking for methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from policies.base import Evidence, PosteriorStore

Dump = dict[str, dict[str, dict[str, Evidence]]]
"""Every stored table: scope -> context -> model -> evidence decayed to now."""


class Lifecycle(Protocol):
    """Background work between ``start`` and ``close`` (periodic saving, write retries)."""

    async def start(self) -> None:
        """Start background work; needs a running event loop."""
        ...

    async def close(self) -> None:
        """Stop background work, write what can be written, release connections."""
        ...


class Counted(Protocol):
    """Write-path counters for /ready and /metrics."""

    def counters(self) -> Mapping[str, int]:
        """Counter name -> value (``pending`` is a level, the others running totals)."""
        ...


class Store(PosteriorStore, Lifecycle, Counted, Protocol):
    """A posterior store the proxy and the CLI run on."""

    async def dump(self) -> Dump:
        """Every stored table (raises StoreUnavailable on an outage)."""
        ...

    async def flush(self) -> bool:
        """Write what is waiting now (buffered deltas; the state file); whether it all was."""
        ...
