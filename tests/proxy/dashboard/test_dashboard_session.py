"""Session tokens: signed with a key derived from the master key, expiring, tamper-proof."""

from __future__ import annotations

from support.clocks import FakeClock

from proxy.dashboard.guard import safe_next
from proxy.dashboard.session import SESSION_S, Sessions

KEY = "sk-master-1234"


def test_a_token_is_valid_for_its_key_until_it_expires() -> None:
    clock = FakeClock(1_000_000.0)
    sessions = Sessions(KEY, clock=clock)
    token = sessions.issue()
    assert KEY not in token and sessions.valid(token)
    assert Sessions(KEY, clock=clock).valid(token)  # another replica with the same key
    assert not Sessions("sk-other-key", clock=clock).valid(token)
    clock.now += SESSION_S + 1
    assert not sessions.valid(token)


def test_tampered_tokens_are_refused() -> None:
    sessions = Sessions(KEY, clock=FakeClock(1_000_000.0))
    version, expires, nonce, signature = sessions.issue().split(".")
    later = f"{version}.{int(expires) + 10**6}.{nonce}.{signature}"
    flipped = signature[:-1] + ("1" if signature[-1] == "0" else "0")
    for token in (later, f"{version}.{expires}.{nonce}.{flipped}", "", "v1.x.y", KEY):
        assert not sessions.valid(token), token
    assert sessions.key_matches(KEY) and not sessions.key_matches(KEY + "x")


def test_login_redirects_only_to_dashboard_pages() -> None:
    assert safe_next("/dashboard/agents/a") == "/dashboard/agents/a"
    for target in ("https://evil.example/", "//evil.example", "/v1/stats", "/dashboardx", "/dashboard/login"):
        assert safe_next(target) == "/dashboard", target
