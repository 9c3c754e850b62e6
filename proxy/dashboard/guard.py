"""Who may see the dashboard: everyone without a master key; with one, a valid session cookie
(or ``Authorization: Bearer <key>``, for scripts)."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from proxy.dashboard.session import COOKIE, SESSION_S, Sessions

LOGIN = "/dashboard/login"
HOME = "/dashboard"


class Guard:
    """Checks requests and answers the login and logout forms for one master key (or none)."""

    def __init__(self, master_key: str | None) -> None:
        self._sessions = None if master_key is None else Sessions(master_key)

    @property
    def enabled(self) -> bool:
        return self._sessions is not None

    def allows(self, request: Request) -> bool:
        sessions = self._sessions
        if sessions is None:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme == "Bearer" and sessions.key_matches(token):
            return True
        return sessions.valid(request.cookies.get(COOKIE))

    def signed_in(self, request: Request, offered: str, next_path: str) -> Response | None:
        """The redirect to ``next_path`` (with the session cookie) when ``offered`` is the
        key, else None."""
        if self._sessions is None or not self._sessions.key_matches(offered):
            return None
        response = RedirectResponse(safe_next(next_path), status_code=303)
        response.set_cookie(
            COOKIE, self._sessions.issue(), max_age=SESSION_S, path=HOME, httponly=True,
            samesite="strict", secure=request.url.scheme == "https",
        )
        return response


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
