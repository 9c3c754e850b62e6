"""Which registered models a request may go to, from its model field, agent and pin."""

from __future__ import annotations

from proxy.config.models import CHAT
from proxy.config.settings import Config
from proxy.pipeline.request import ChatRequest
from proxy.wire.errors import ProxyError
from proxy.wire.names import AUTO


def candidates_for(config: Config, request: ChatRequest) -> tuple[str, ...]:
    """Arm names in config order; raises ProxyError (404/403) when none may serve.

    Only models in ``request.routable`` (the client key's models) when it is set; none of them
    left is 403 ``permission_denied``.

    - ``X-Model-Manager-Pin: true`` or the agent's ``pin``: exactly that model.
    - ``auto``, no model, or (with ``router.model_field: route``) a name that is not a
      multi-model group: every model the agent may use.
    - a group name: the group's models the agent may use.

    A configured model left out (``config.unavailable``: credentials unset, unknown provider,
    malformed ``api_base``) is 503 ``model_unavailable`` when named, pinned, or when it leaves
    the agent no model. A pinned non-chat model (``model_info.mode``) is 400 ``wrong_model_mode``.
    """
    found = _candidates(config, request)
    if request.routable is None:
        return found
    kept = tuple(name for name in found if name in request.routable)
    if not kept:
        raise ProxyError(403, "permission_denied", "this key may not use the models this request would go to",
                         param="model")
    return kept


def _candidates(config: Config, request: ChatRequest) -> tuple[str, ...]:
    agent = config.agent(request.agent)
    if agent.pin is not None:
        if agent.pin in config.unavailable:
            raise _unavailable(agent.pin)
        return (agent.pin,)
    allowed = agent.models if agent.models is not None else tuple(config.arms)
    if not allowed:
        raise ProxyError(
            503, "model_unavailable", f"agent {request.agent!r} has no available model (see GET /ready)"
        )
    group = _pinned(config, request.model) if request.pinned else _group(config, request.model)
    if group is None:
        return allowed
    chosen = tuple(name for name in group if name in allowed)
    if not chosen:
        raise ProxyError(
            403,
            "model_not_allowed",
            f"agent {request.agent!r} may not use {request.model!r}",
            param="model",
        )
    return chosen


def _group(config: Config, model: str | None) -> tuple[str, ...] | None:
    """The named group, or None when the request routes among all allowed models."""
    if model is None or model == AUTO:
        return None
    group = config.groups.get(model) or ((model,) if model in config.arms else None)
    if config.router.model_field == "respect":
        if group is None:
            raise _unknown(config, model)
        return group
    return group if group is not None and len(group) > 1 else None


def _pinned(config: Config, model: str | None) -> tuple[str, ...]:
    if model is None or model == AUTO:
        raise ProxyError(400, "invalid_request", "pinning needs a concrete 'model'", param="model")
    if model in config.arms:
        return (model,)
    if model in config.groups:
        return config.groups[model]
    raise _unknown(config, model)


def _unknown(config: Config, model: str) -> ProxyError:
    if model in config.unavailable:
        return _unavailable(model)
    mode = _mode_of(config, model)
    if mode is not None:
        return ProxyError(
            400,
            "wrong_model_mode",
            f"model {model!r} has model_info.mode {mode!r}: it does not serve chat completions",
            param="model",
        )
    return ProxyError(
        404,
        "model_not_found",
        f"model {model!r} is not registered (see GET /v1/models)",
        param="model",
    )


def _mode_of(config: Config, model: str) -> str | None:
    """The mode of a registered non-chat model (or group of them) called ``model``, else None."""
    for mode, arms in config.arms_by_mode.items():
        if mode != CHAT and any(model in (arm.name, arm.group) for arm in arms.values()):
            return mode
    return None


def _unavailable(model: str) -> ProxyError:
    """503; the reason (it may name environment variables) is for operators, in /ready."""
    return ProxyError(
        503,
        "model_unavailable",
        f"model {model!r} is configured but unavailable (GET /ready gives the reason)",
        param="model",
    )
