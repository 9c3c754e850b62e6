"""Session tokens: bound to a key id (never the key), signed with a secret derived from that
key's digest, expiring, tamper-proof."""

from __future__ import annotations

from support.clocks import FakeClock

from proxy.config.keys import ClientKey, digest_of, master_key
from proxy.dashboard.guard import safe_next
from proxy.dashboard.session import SESSION_S, Sessions
from proxy.http.auth import KeyRing

KEY = "sk-master-1234"
OPS = ClientKey("ops", digest_of("sk-ops-key-5678"))


def test_a_token_is_valid_for_its_key_until_it_expires() -> None:
    clock = FakeClock(1_000_000.0)
    sessions = Sessions(KeyRing([master_key(KEY), OPS]), clock=clock)
    token = sessions.issue(OPS)
    assert "sk-ops-key-5678" not in token and sessions.valid(token) == OPS
    assert Sessions(KeyRing([OPS]), clock=clock).valid(token) == OPS  # another replica
    changed = ClientKey("ops", digest_of("sk-ops-key-rotated"))
    assert Sessions(KeyRing([changed]), clock=clock).valid(token) is None
    assert Sessions(KeyRing([master_key(KEY)]), clock=clock).valid(token) is None
    clock.now += SESSION_S + 1
    assert sessions.valid(token) is None


def test_tampered_tokens_are_refused() -> None:
    sessions = Sessions(KeyRing([master_key(KEY), OPS]), clock=FakeClock(1_000_000.0))
    version, expires, key_id, nonce, signature = sessions.issue(OPS).split(".")
    later = f"{version}.{int(expires) + 10**6}.{key_id}.{nonce}.{signature}"
    other = f"{version}.{expires}.master.{nonce}.{signature}"
    flipped = signature[:-1] + ("1" if signature[-1] == "0" else "0")
    for token in (later, other, f"{version}.{expires}.{key_id}.{nonce}.{flipped}", "", "v2.x.y", KEY):
        assert sessions.valid(token) is None, token


def test_login_redirects_only_to_dashboard_pages() -> None:
    assert safe_next("/dashboard/agents/a") == "/dashboard/agents/a"
    for target in ("https://evil.example/", "//evil.example", "/v1/stats", "/dashboardx", "/dashboard/login"):
        assert safe_next(target) == "/dashboard", target
