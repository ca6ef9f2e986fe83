"""Accounts, apps and OAuth2 tokens: who may call, and what ``/oauth2/token`` grants.

Pure data like ``state``; the caller holds the fake's lock. Errors carry the
exact status and body Dropbox answers with, so the HTTP layer only copies them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from .state import Ids, Namespace

DEFAULT_EXPIRES_IN = 14400
SCOPE = "account_info.read files.content.read files.metadata.read"


class AuthFailure(Exception):
    """A 401 whose body names an ``AuthError`` tag (the SDK raises ``AuthError``)."""

    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.tag = tag


class GrantFailure(Exception):
    """A 400 from ``/oauth2/token`` in the OAuth2 shape ``{"error", "error_description"}``."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


@dataclass
class Account:
    account_id: str
    email: str
    display_name: str
    namespace_id: str
    files: Namespace
    cursor_generation: int = 0

    def full_account(self) -> dict[str, object]:
        """Every field ``dropbox.users.FullAccount`` requires, with Dropbox's shapes."""
        given, _, surname = self.display_name.partition(" ")
        initials = "".join(w[0] for w in self.display_name.split() if w).upper()
        return {
            "account_id": self.account_id,
            "name": {
                "given_name": given,
                "surname": surname,
                "familiar_name": given,
                "display_name": self.display_name,
                "abbreviated_name": initials,
            },
            "email": self.email,
            "email_verified": True,
            "disabled": False,
            "country": "US",
            "locale": "en",
            "referral_link": "https://www.dropbox.com/referrals/" + self.namespace_id,
            "is_paired": False,
            "account_type": {".tag": "basic"},
            "root_info": {
                ".tag": "user",
                "root_namespace_id": self.namespace_id,
                "home_namespace_id": self.namespace_id,
            },
        }


@dataclass
class AccessToken:
    account_id: str
    expires_at: float
    expired: bool = False


@dataclass
class RefreshToken:
    account_id: str
    app_key: str
    pkce: bool  # issued to a PKCE flow: refreshing needs no client_secret


@dataclass
class Grant:
    """What the user's "Allow" click left behind: an authorization code, used once."""

    account_id: str
    app_key: str
    challenge: str | None
    offline: bool
    redirect_uri: str | None


@dataclass
class Directory:
    ids: Ids
    accounts: dict[str, Account] = field(default_factory=dict)
    apps: dict[str, str] = field(default_factory=dict)
    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    codes: dict[str, Grant] = field(default_factory=dict)

    def add_account(self, email: str, display_name: str) -> Account:
        account_id = "dbid:AA" + secrets.token_urlsafe(33)[:33]  # 40 characters, as the SDK checks
        namespace = str(1_000_000_000 + secrets.randbelow(9_000_000_000))
        acct = Account(account_id, email, display_name, namespace, Namespace(self.ids))
        self.accounts[account_id] = acct
        return acct

    def account(self, account_id: str) -> Account:
        try:
            return self.accounts[account_id]
        except KeyError:
            raise KeyError(f"no such account: {account_id!r}") from None

    def issue_access(self, account_id: str, expires_in: int = DEFAULT_EXPIRES_IN) -> str:
        self.account(account_id)
        token = "sl." + secrets.token_urlsafe(96)
        self.access[token] = AccessToken(account_id, time.time() + expires_in)
        return token

    def issue_refresh(self, account_id: str, app_key: str, *, pkce: bool = False) -> str:
        self.account(account_id)
        if app_key not in self.apps:
            raise KeyError(f"no such app: {app_key!r} (call add_app first)")
        token = secrets.token_urlsafe(48)
        self.refresh[token] = RefreshToken(account_id, app_key, pkce)
        return token

    def bearer(self, header: str) -> Account:
        """The account an ``Authorization: Bearer`` header stands for, or the 401 Dropbox sends."""
        scheme, _, token = header.partition(" ")
        record = self.access.get(token.strip()) if scheme.lower() == "bearer" else None
        if record is None:
            raise AuthFailure("invalid_access_token")
        if record.expired or time.time() >= record.expires_at:
            raise AuthFailure("expired_access_token")
        return self.account(record.account_id)

    def expire(self, account_id: str | None) -> None:
        for record in self.access.values():
            if account_id is None or record.account_id == account_id:
                record.expired = True

    def approve(self, authorize_url: str, account_id: str) -> str:
        """What Dropbox's "Allow" button gives the user for an ``/oauth2/authorize`` URL."""
        self.account(account_id)
        query = {k: v[-1] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        if query.get("response_type") != "code":
            raise ValueError("authorize URL must have response_type=code")
        if query.get("client_id") not in self.apps:
            raise ValueError(f"unknown client_id {query.get('client_id')!r} (call add_app first)")
        challenge = query.get("code_challenge")
        if challenge is not None and query.get("code_challenge_method", "plain") != "S256":
            raise ValueError("only code_challenge_method=S256 is supported")
        code = secrets.token_urlsafe(32)
        self.codes[code] = Grant(
            account_id,
            query["client_id"],
            challenge,
            query.get("token_access_type") == "offline",
            query.get("redirect_uri"),
        )
        return code

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, object]:
        """The JSON answer of ``POST /oauth2/token``; raises ``GrantFailure`` for a 400."""
        client_id, secret = basic if basic else (form.get("client_id"), form.get("client_secret"))
        grant_type = form.get("grant_type")
        if client_id is None or client_id not in self.apps:
            raise GrantFailure("invalid_client", "Invalid client_id or client_secret")
        if secret is not None and secret != self.apps[client_id]:
            raise GrantFailure("invalid_client", "Invalid client_id or client_secret")
        if grant_type == "refresh_token":
            refresh = self.refresh.get(form.get("refresh_token", ""))
            if refresh is None or refresh.app_key != client_id:
                raise GrantFailure("invalid_grant", "refresh token is invalid or revoked")
            if secret is None and not refresh.pkce:
                raise GrantFailure(
                    "invalid_request", "No auth function available for given request"
                )
            return {
                "access_token": self.issue_access(refresh.account_id),
                "token_type": "bearer",
                "expires_in": DEFAULT_EXPIRES_IN,
            }
        if grant_type == "authorization_code":
            return self._exchange(form, client_id, secret)
        raise GrantFailure("unsupported_grant_type", f"unknown grant_type {grant_type!r}")

    def _exchange(
        self, form: dict[str, str], client_id: str, secret: str | None
    ) -> dict[str, object]:
        grant = self.codes.pop(form.get("code", ""), None)  # a code works once
        if grant is None or grant.app_key != client_id:
            raise GrantFailure("invalid_grant", "code doesn't exist or has expired")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise GrantFailure("invalid_grant", "redirect_uri mismatch")
        if grant.challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).decode().rstrip("=") != grant.challenge:
                raise GrantFailure("invalid_grant", "invalid code verifier")
        elif secret is None:
            raise GrantFailure("invalid_request", "No auth function available for given request")
        account = self.account(grant.account_id)
        answer: dict[str, object] = {
            "access_token": self.issue_access(grant.account_id),
            "token_type": "bearer",
            "expires_in": DEFAULT_EXPIRES_IN,
            "scope": SCOPE,
            "uid": account.namespace_id,
            "account_id": grant.account_id,
        }
        if grant.offline:
            answer["refresh_token"] = self.issue_refresh(
                grant.account_id, client_id, pkce=grant.challenge is not None
            )
        return answer
