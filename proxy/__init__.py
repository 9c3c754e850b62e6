"""Model Manager: an OpenAI-compatible proxy that learns which upstream model serves each agent.

``from proxy import ModelManager`` is the in-process router (proxy.runtime.in_process), loaded
on first use. Importing the package keeps litellm offline: without these settings ``import litellm``
blocks for seconds fetching a price map and phones home with telemetry.
"""

import importlib
import os
from typing import Any

for _name, _value in (
    ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
    ("LITELLM_OFFLINE_MODE", "true"),
    ("LITELLM_TELEMETRY_DISABLED", "true"),
):
    os.environ.setdefault(_name, _value)


LAZY = {
    "ModelManager": "proxy.runtime.in_process",
    "SyncModelManager": "proxy.runtime.in_process",
    "ModelManagerError": "proxy.runtime.in_process",
    "ModelResponse": "proxy.runtime.in_process",
}
"""Names ``from proxy import X`` loads on first use, so ``import proxy`` stays light."""


def __getattr__(name: str) -> Any:
    module = LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'proxy' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
