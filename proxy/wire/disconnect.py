"""Noticing that the client went away, with one watcher task per request."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Message, Receive


async def cancel_on_disconnect(receive: Receive, task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` when the client disconnects (one watcher instead of a task group)."""
    message: Message = await receive()
    while message["type"] != "http.disconnect":
        message = await receive()
    if task is not None:
        task.cancel()
