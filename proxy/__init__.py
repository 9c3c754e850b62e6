"""Model Manager: an OpenAI-compatible proxy that learns which upstream model serves each agent.

Importing the package keeps litellm offline: without these settings ``import litellm``
blocks for seconds fetching a price map and phones home with telemetry.
"""

import os

for _name, _value in (
    ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
    ("LITELLM_OFFLINE_MODE", "true"),
    ("LITELLM_TELEMETRY_DISABLED", "true"),
):
    os.environ.setdefault(_name, _value)
