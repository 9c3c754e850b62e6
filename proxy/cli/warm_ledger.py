"""Which logs ``warm-start`` already imported, so the same log is not counted twice by accident.

An import's fingerprint is the sha256 of the file's bytes and of the options that shape the
evidence (agent column, split, strength), cut to 16 hex digits. It is recorded once the
evidence is written: in Redis as ``<prefix>:warm-start:<fingerprint>`` (no expiry), or next
to the embedded state file in ``<state_file>.warm-starts.json``. A record says when and from
which path; ``--force`` imports again anyway.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Protocol

import orjson

from storage.embedded.state_file import write_atomically
from storage.redis.client import Client


def fingerprint(path: Path, *, agent_column: str | None, split: str | None, strength: float) -> str:
    """The fingerprint of importing ``path`` with these options (reads the whole file)."""
    digest = hashlib.sha256(path.read_bytes())
    digest.update(orjson.dumps([agent_column, split, strength]))
    return digest.hexdigest()[:16]


class Ledger(Protocol):
    async def seen(self, key: str) -> str | None:
        """The record of an earlier import with this fingerprint, or None."""
        ...

    async def record(self, key: str, source: Path) -> None:
        """Remember that ``source`` was imported now under this fingerprint."""
        ...


def _entry(source: Path) -> dict[str, str]:
    return {"file": str(source), "at": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


class RedisLedger:
    """Records as Redis strings (JSON)."""

    def __init__(self, client: Client, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    async def seen(self, key: str) -> str | None:
        value: bytes | str | None = await self._client.get(self._key(key))
        if isinstance(value, bytes):
            return value.decode(errors="replace")
        return value

    async def record(self, key: str, source: Path) -> None:
        await self._client.set(self._key(key), orjson.dumps(_entry(source)))

    def _key(self, key: str) -> str:
        return f"{self._prefix}:warm-start:{key}"


class FileLedger:
    """Records in one JSON file next to the state file (rewritten atomically)."""

    def __init__(self, state_file: Path) -> None:
        self.path = state_file.with_name(state_file.name + ".warm-starts.json")

    async def seen(self, key: str) -> str | None:
        entry = self._records().get(key)
        return None if entry is None else orjson.dumps(entry).decode()

    async def record(self, key: str, source: Path) -> None:
        records = self._records()
        records[key] = _entry(source)
        write_atomically(self.path, orjson.dumps(records, option=orjson.OPT_INDENT_2))

    def _records(self) -> dict[str, object]:
        """The records; an unreadable file counts as none (it only guards against repeats)."""
        try:
            records = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return records if isinstance(records, dict) else {}
