"""Names that come from clients and become keys: agents, workflows, models."""

from __future__ import annotations

import re

AUTO = "auto"
DEFAULT_AGENT = "default"
MAX_NAME_LENGTH = 64
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,63}"
"""Agent and model names (also the OpenAPI description's pattern, anchored there)."""
WORKFLOW_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}"
"""Workflow and request ids."""
_NAME = re.compile(NAME_PATTERN)
_WORKFLOW = re.compile(WORKFLOW_PATTERN)


def is_valid_name(value: str) -> bool:
    """Agent and model names: 1-64 of letters, digits and ``_.:@/-``, not starting with a sign."""
    return _NAME.fullmatch(value) is not None


def is_valid_workflow(value: str) -> bool:
    """Workflow ids: like names, up to 128 characters (room for a UUID with a prefix)."""
    return _WORKFLOW.fullmatch(value) is not None
