"""guarded: a stream's transport errors become its failure; the tail comes after the events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from proxy.forwarding.base import FailureKind, UpstreamError, guarded


def _cut(exc: Exception) -> UpstreamError:
    return UpstreamError(FailureKind.STREAM_CUT, f"cut: {exc}")


async def _events(*frames: bytes, then: Exception | None = None) -> AsyncIterator[bytes]:
    for frame in frames:
        yield frame
    if then is not None:
        raise then


async def test_the_tail_follows_the_events_and_is_called_only_once_they_ended() -> None:
    seen: list[bytes] = []

    def tail() -> tuple[bytes, ...]:
        return (b"end-after-" + b"+".join(seen),)

    async for frame in guarded(_events(b"a", b"b"), _cut, tail):
        seen.append(frame)
    assert seen == [b"a", b"b", b"end-after-a+b"]


async def test_a_transport_error_becomes_the_failure_and_skips_the_tail() -> None:
    frames = []
    with pytest.raises(UpstreamError, match="cut: reset") as caught:
        async for frame in guarded(_events(b"a", then=OSError("reset")), _cut, lambda: (b"tail",)):
            frames.append(frame)
    assert frames == [b"a"] and isinstance(caught.value.__cause__, OSError)


async def test_upstream_errors_from_the_events_or_the_tail_pass_unchanged() -> None:
    mine = UpstreamError(FailureKind.BAD_RESPONSE, "error event")
    with pytest.raises(UpstreamError) as caught:
        async for _ in guarded(_events(then=mine), _cut):
            pass
    assert caught.value is mine

    def short_tail() -> tuple[bytes, ...]:
        raise UpstreamError(FailureKind.STREAM_CUT, "ended without [DONE]")

    with pytest.raises(UpstreamError, match="ended without"):
        async for _ in guarded(_events(b"a"), _cut, short_tail):
            pass
