"""The embedded tracking state's file: JSON, written atomically, read defensively.

It sits next to the posterior state file (``state.json`` -> ``state.tracking.json``). Format::

    {"format": "model-manager-tracking", "version": 1,
     "stats": {agent: {counter: number}},
     "workflows": [[id, expires, {meta: string}, {counter: number}, [request id]]],
     "recent": [[agent or null, [[workflow, last seen]]]],
     "decisions": [[request id, expires, {field: string}]],
     "timeline": {agent: {minute: {"<model>|<metric>": number}}},
     "recent_decisions": {agent: [entry]}}

``timeline`` and ``recent_decisions`` (proxy.tracking.timeline) are optional: a file without
them reads as empty ones; minutes older than TIMELINE_RETENTION_S are dropped on read.

Times are epoch seconds; decision fields are backend.record_fields. On read, expired
workflows and decisions are dropped, expiries are capped at now + the current retention or
TTL (a shortened setting applies to restored entries too), and corrupt entries are skipped
and counted. A file that is not a version 1 tracking file raises CorruptStateFile.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from proxy.tracking import timeline
from proxy.tracking.backend import WorkflowRaw, parse_record, record_fields
from proxy.tracking.memory_state import Expiring, TrackingState
from proxy.tracking.records import DecisionRecord
from storage.embedded.state_file import CorruptStateFile

FORMAT = "model-manager-tracking"
VERSION = 1
SECTIONS = {"stats": dict, "workflows": list, "recent": list, "decisions": list}

T = TypeVar("T")


def path_for(state_file: Path) -> Path:
    """The tracking file that goes with the posterior ``state_file``."""
    return state_file.with_name(f"{state_file.stem}.tracking{state_file.suffix}")


def encode(state: TrackingState) -> bytes:
    """``state`` as the file's bytes (run off the event loop on a detached copy)."""
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "stats": state.stats,
        "workflows": [
            [wf, e.expires, e.workflow.meta, e.workflow.counts, e.workflow.request_ids]
            for wf, e in state.workflows.items()
        ],
        "recent": [[scope, list(recent.items())] for scope, recent in state.recent.items()],
        "decisions": [[rid, expires, record_fields(r)] for rid, (expires, r) in state.decisions.items()],
        "timeline": {a: {str(m): c for m, c in series.items()} for a, series in state.timeline.items()},
        "recent_decisions": state.recent_decisions,
    }
    return orjson.dumps(doc)


def read(path: Path, *, now: float, retention_s: float, decision_ttl_s: float) -> tuple[TrackingState, int]:
    """The live state stored in ``path`` and how many entries were corrupt (skipped).

    A missing file is empty state. Raises CorruptStateFile (or OSError) when the file as a
    whole cannot be used.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return TrackingState(), 0
    doc = _document(data)
    reader = _Reader(now, retention_s, decision_ttl_s)
    workflows = reader.workflows(doc["workflows"])
    state = TrackingState(
        stats=reader.stats(doc["stats"]),
        workflows=workflows,
        recent=reader.recent(doc["recent"], workflows),
        decisions=reader.decisions(doc["decisions"]),
        timeline=reader.timeline(doc.get("timeline", {})),
        recent_decisions=reader.recent_decisions(doc.get("recent_decisions", {})),
    )
    return state, reader.bad


def _document(data: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CorruptStateFile(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise CorruptStateFile(f"not a version {VERSION} {FORMAT} file")
    for name, kind in SECTIONS.items():
        if not isinstance(doc.get(name), kind):
            raise CorruptStateFile(f"{name!r} is not a {kind.__name__}")
    return doc


class _Reader:
    """Validates entries, keeping the live ones and counting the corrupt ones in ``bad``."""

    def __init__(self, now: float, retention_s: float, decision_ttl_s: float) -> None:
        self._now = now
        self._retention = retention_s
        self._ttl = decision_ttl_s
        self.bad = 0

    def stats(self, raw: dict[str, Any]) -> dict[str, dict[str, float]]:
        """Each agent's counters, or none of them when one is not a finite number."""
        out = {}
        for agent, counters in raw.items():
            counts = _counts(counters)
            if counts is None:
                self.bad += 1
            else:
                out[agent] = counts
        return out

    def timeline(self, raw: object) -> dict[str, dict[int, dict[str, float]]]:
        """Each agent's live minutes; a corrupt agent or minute is skipped and counted."""
        oldest = timeline.minute_of(self._now - timeline.TIMELINE_RETENTION_S)
        out: dict[str, dict[int, dict[str, float]]] = {}
        for agent, minutes in raw.items() if isinstance(raw, dict) else ():
            if not isinstance(minutes, dict):
                self.bad += 1
                continue
            series = {}
            for minute, counters in minutes.items():
                at, counts = _minute(minute), _counts(counters)
                if counts is None or at < 0:
                    self.bad += 1
                elif at >= oldest:
                    series[at] = counts
            out[agent] = dict(sorted(series.items()))
        return out

    def recent_decisions(self, raw: object) -> dict[str, list[dict[str, Any]]]:
        """Each agent's recent decisions (entries that are not objects are skipped)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for agent, entries in raw.items() if isinstance(raw, dict) else ():
            kept = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
            self.bad += (len(entries) if isinstance(entries, list) else 1) - len(kept)
            out[agent] = kept[: timeline.RECENT_DECISIONS_KEPT]
        return out

    def workflows(self, rows: list[Any]) -> dict[str, Expiring]:
        """Live workflows, soonest expiry first."""
        live = [(wf, e) for wf, e in self._rows(rows, 5, self._workflow) if e.expires > self._now]
        return dict(sorted(live, key=lambda item: item[1].expires))

    def _workflow(self, row: list[Any]) -> tuple[str, Expiring] | None:
        wf, expires, meta, counters, ids = row
        counts = _counts(counters)
        valid = isinstance(wf, str) and _finite(expires) and _strings(meta) and _string_list(ids)
        if not valid or counts is None:
            return None
        expires = min(float(expires), self._now + self._retention)
        return wf, Expiring(expires, WorkflowRaw(meta, counts, ids))

    def recent(self, rows: list[Any], live: dict[str, Expiring]) -> dict[str | None, dict[str, float]]:
        """The recent-workflow indexes, restricted to ``live`` workflows."""
        parsed = self._rows(rows, 2, _recent)
        return {scope: {wf: at for wf, at in items.items() if wf in live} for scope, items in parsed}

    def decisions(self, rows: list[Any]) -> dict[str, tuple[float, DecisionRecord]]:
        """Live decision records, soonest expiry first."""
        live = [item for item in self._rows(rows, 3, self._decision) if item[1][0] > self._now]
        return dict(sorted(live, key=lambda item: item[1][0]))

    def _decision(self, row: list[Any]) -> tuple[str, tuple[float, DecisionRecord]] | None:
        rid, expires, fields = row
        if not (isinstance(rid, str) and _finite(expires) and _strings(fields)):
            return None
        record = parse_record(rid, fields)
        if record is None:
            return None
        return rid, (min(float(expires), self._now + self._ttl), record)

    def _rows(self, rows: list[Any], width: int, parse: Callable[[list[Any]], T | None]) -> list[T]:
        """Rows of ``width`` items that ``parse`` accepts; the others are counted in ``bad``."""
        out = []
        for row in rows:
            item = parse(row) if isinstance(row, list) and len(row) == width else None
            if item is None:
                self.bad += 1
            else:
                out.append(item)
        return out


def _counts(raw: object) -> dict[str, float] | None:
    if not isinstance(raw, dict) or not all(_finite(v) for v in raw.values()):
        return None
    return {name: float(value) for name, value in raw.items()}


def _minute(text: object) -> int:
    """A stored minute key as an int; -1 when it is not one."""
    return int(text) if isinstance(text, str) and text.isdigit() else -1


def _recent(row: list[Any]) -> tuple[str | None, dict[str, float]] | None:
    scope, items = row
    if not (scope is None or isinstance(scope, str)) or not isinstance(items, list):
        return None
    if not all(isinstance(item, list) and len(item) == 2 for item in items):
        return None
    if not all(isinstance(wf, str) and _finite(at) for wf, at in items):
        return None
    return scope, {wf: float(at) for wf, at in items}


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value - value == 0


def _strings(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _string_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
