"""How the process logs: ``text`` (one readable line per record) or ``json`` (one object per line).

JSON lines carry ``time`` (epoch seconds), ``level``, ``logger`` and either the record's
``event`` and ``fields`` (the access line and attempt warnings, proxy.pipeline.access_log)
or its ``message``; an exception adds ``exc``.
"""

from __future__ import annotations

import logging
import os
import sys

import orjson

FORMATS = ("text", "json")
LOG_FORMAT_ENV = "MODEL_MANAGER_LOG_FORMAT"
"""Carries ``--log-format`` to uvicorn's worker processes."""
TEXT = "%(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
        }
        fields = record.__dict__.get("fields")
        if isinstance(fields, dict):
            line["event"] = record.__dict__.get("event", record.msg)
            line.update(fields)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(log_format: str | None = None) -> None:
    """Root logging at LOG_LEVEL (default INFO) to stderr in ``log_format`` (default: the
    environment's MODEL_MANAGER_LOG_FORMAT, else text); replaces earlier handlers."""
    chosen = log_format or os.environ.get(LOG_FORMAT_ENV) or "text"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else logging.Formatter(TEXT))
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), handlers=[handler], force=True)
