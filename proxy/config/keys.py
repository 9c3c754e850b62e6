"""``keys:``: client keys besides the master key, each limited to agents, models, a rate and scopes.

Each entry is named (the key id, shown in logs and bound to dashboard sessions; never the
key itself) and gives its key as ``os.environ/NAME`` or as ``sha256:<64 hex digits>`` (the
SHA-256 of the key). A plain key in the config is refused (ConfigError): config files end up
in repositories. Only the SHA-256 digest is kept in memory; requests are matched by comparing
digests with hmac.compare_digest.

    keys:
      team-a:
        key: os.environ/TEAM_A_KEY
        agents: ["team-a-*"]          # fnmatch patterns, required
        models: [gpt-4o-mini, auto]   # names or groups it may ask for; absent: every one
        rpm: 120                      # requests per minute (this process); absent: no limit
        scopes: [chat]                # chat and/or admin; default [chat]
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass
from fnmatch import fnmatchcase

from proxy.config.reader import ENV_PREFIX, ConfigError, Section, resolve_env

CHAT, ADMIN = "chat", "admin"
SCOPES = (CHAT, ADMIN)
MASTER_ID = "master"
EVERY_AGENT = "*"
HASH_PREFIX = "sha256:"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_HEX = re.compile(r"[0-9a-f]{64}")
KEY_FIELDS = ("key", "agents", "models", "rpm", "scopes")


@dataclass(frozen=True, slots=True)
class ClientKey:
    """One key's identity and limits (the master key is one with every scope and no limit)."""

    key_id: str
    digest: bytes
    """SHA-256 of the key."""
    agents: tuple[str, ...] = (EVERY_AGENT,)
    models: tuple[str, ...] | None = None
    rpm: int | None = None
    scopes: frozenset[str] = frozenset(SCOPES)

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    def allows_agent(self, agent: str) -> bool:
        return any(fnmatchcase(agent, pattern) for pattern in self.agents)

    def allows_model(self, model: str) -> bool:
        return self.models is None or model in self.models

    @property
    def every_agent(self) -> bool:
        """Whether the key sees every agent (needed for views across agents: metrics, dashboard)."""
        return EVERY_AGENT in self.agents


def digest_of(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def master_key(key: str) -> ClientKey:
    return ClientKey(MASTER_ID, digest_of(key))


def parse_keys(section: Section, models: Collection[str]) -> tuple[ClientKey, ...]:
    """Every entry of ``keys:``; ``models`` are the names a key may list (models, groups, auto)."""
    found = tuple(_key(section, name, models) for name in section.key_names())
    section.finish()
    return found


def _key(parent: Section, key_id: str, models: Collection[str]) -> ClientKey:
    path = parent.key_path(key_id)
    if not _ID.fullmatch(key_id) or key_id == MASTER_ID:
        raise ConfigError(f"{path}: a key id is 1-64 letters, digits, _ or - (and not {MASTER_ID!r})")
    section = parent.section(key_id)
    section.only(KEY_FIELDS)
    digest = _digest(section.key_path("key"), section.literal("key"))
    agents = section.string_list("agents")
    if not agents:
        raise ConfigError(f"{section.key_path('agents')}: is required (patterns, e.g. ['team-a-*'])")
    listed = section.string_list("models")
    unknown = sorted(set(listed or ()) - set(models))
    if unknown:
        raise ConfigError(f"{section.key_path('models')}: unknown model or group {unknown[0]!r}")
    scopes = section.string_list("scopes") or (CHAT,)
    wrong = sorted(set(scopes) - set(SCOPES))
    if wrong:
        allowed = ", ".join(SCOPES)
        raise ConfigError(f"{section.key_path('scopes')}: unknown scope {wrong[0]!r} (allowed: {allowed})")
    rpm = section.raw("rpm")
    return ClientKey(
        key_id=key_id,
        digest=digest,
        agents=agents,
        models=listed,
        rpm=None if rpm is None else section.integer("rpm", 0, low=1),
        scopes=frozenset(scopes),
    )


def _digest(path: str, value: object) -> bytes:
    """The SHA-256 of the key an ``os.environ/`` or ``sha256:`` value gives; ConfigError otherwise."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        key = resolve_env(path, value)
        if not isinstance(key, str) or len(key) < 8:
            raise ConfigError(f"{path}: the key in {value} must be at least 8 characters")
        return digest_of(key)
    if isinstance(value, str) and value.startswith(HASH_PREFIX):
        hex_digits = value[len(HASH_PREFIX) :]
        if not _HEX.fullmatch(hex_digits):
            raise ConfigError(f"{path}: sha256: must be followed by 64 lowercase hex digits")
        return bytes.fromhex(hex_digits)
    raise ConfigError(
        f"{path}: must be os.environ/NAME or sha256:<hex digest of the key>; a plain key is not "
        "accepted in config (hash one with: python3 -c \"import hashlib,sys; "
        "print('sha256:' + hashlib.sha256(sys.argv[1].encode()).hexdigest())\" KEY)"
    )
