"""Who may see the dashboard: everyone when the proxy needs no key; else a key with the
``admin`` scope and every agent (``agents: ['*']``, as the master key), given once at the login
form (then a session cookie bound to the key id) or as ``Authorization: Bearer <key>``."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from proxy.config.keys import ADMIN, ClientKey
from proxy.dashboard.session import COOKIE, SESSION_S, Sessions
from proxy.http.auth import KeyRing

LOGIN = "/dashboard/login"
HOME = "/dashboard"


class Guard:
    """Checks requests and answers the login and logout forms for the proxy's keys (or none)."""

    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys
        self._sessions = Sessions(keys) if keys.keys else None

    @property
    def enabled(self) -> bool:
        return self._sessions is not None

    def allows(self, request: Request) -> bool:
        sessions = self._sessions
        if sessions is None:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme == "Bearer" and _may_see(self._keys.identify(token)):
            return True
        return _may_see(sessions.valid(request.cookies.get(COOKIE)))

    def signed_in(self, request: Request, offered: str, next_path: str) -> Response | None:
        """The redirect to ``next_path`` (with the session cookie) when ``offered`` is a key
        that may see the dashboard, else None."""
        key = self._keys.identify(offered)
        if self._sessions is None or key is None or not _may_see(key):
            return None
        response = RedirectResponse(safe_next(next_path), status_code=303)
        response.set_cookie(
            COOKIE, self._sessions.issue(key), max_age=SESSION_S, path=HOME, httponly=True,
            samesite="strict", secure=request.url.scheme == "https",
        )
        return response


def _may_see(key: ClientKey | None) -> bool:
    return key is not None and key.has(ADMIN) and key.every_agent


def login_fields(form: bytes) -> tuple[str, str]:
    """(offered key, next path) of the urlencoded login form."""
    fields = parse_qs(form.decode("utf-8", "replace"), max_num_fields=4)
    return (fields.get("key") or [""])[0], safe_next((fields.get("next") or [HOME])[0])


def signed_out() -> Response:
    """Back to the login form, with the cookie cleared."""
    response = RedirectResponse(LOGIN, status_code=303)
    response.delete_cookie(COOKIE, path=HOME, httponly=True, samesite="strict")
    return response


def safe_next(path: str) -> str:
    """``path`` when it is a dashboard page of this server, else the overview."""
    if path == HOME or (path.startswith(HOME + "/") and not path.startswith(LOGIN) and "\\" not in path):
        return path
    return HOME
