"""Who may see the dashboard: one shared token, as a cookie or a bearer header.

The cookie holds an HMAC of the token, not the token; changing the token logs
everyone out. Every form carries a CSRF token derived from the session, so a
page on another site cannot make a logged-in browser press a button (the
cookie is also ``SameSite=Strict``). A bearer header cannot be sent
cross-site without the page's consent, so it needs no CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request

COOKIE = "ctl_session"


class Guard:
    def __init__(self, token: str | None) -> None:
        self.token = token
        #: Without a token (loopback only) CSRF tokens still need a secret.
        self._secret = (token or secrets.token_hex(32)).encode()

    @property
    def enabled(self) -> bool:
        return self.token is not None

    def _mac(self, what: str) -> str:
        return hmac.new(self._secret, what.encode(), hashlib.sha256).hexdigest()

    def session_value(self) -> str:
        return self._mac("session")

    def token_matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def bearer(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(value.strip())

    def allowed(self, request: Request) -> bool:
        if not self.enabled or self.bearer(request):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self.session_value().encode())

    def csrf_token(self, request: Request) -> str:
        return self._mac("csrf:" + request.cookies.get(COOKIE, ""))

    def csrf_ok(self, request: Request, given: str) -> bool:
        if self.bearer(request):
            return True
        return hmac.compare_digest(given.encode(), self.csrf_token(request).encode())
