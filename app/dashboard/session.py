"""The dashboard's session cookie and CSRF tokens: signed with RELANCE_SECRET_KEY, no I/O.

A session names the shop, the API key row it was opened with (revoking or expiring that key
ends the session), when it expires, and a random nonce its CSRF token is derived from. It is
signed, not encrypted: it holds no secret.
"""

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.security import sign_token, verify_token

COOKIE = "relance_dashboard"
LOGIN_CSRF_COOKIE = "relance_dashboard_login"
PATH = "/dashboard"
TTL = timedelta(hours=8)

_SESSION = "dashboard-session"
_CSRF = "dashboard-csrf"
_SEP = "~"


@dataclass(frozen=True)
class Session:
    shop_id: str
    key_id: int
    expires_at: int  # Unix seconds
    nonce: str


def new_session(shop_id: str, key_id: int, now: datetime) -> Session:
    return Session(shop_id, key_id, int((now + TTL).timestamp()), secrets.token_urlsafe(12))


def encode(secret_key: str, session: Session) -> str:
    value = _SEP.join(
        (session.shop_id, str(session.key_id), str(session.expires_at), session.nonce)
    )
    return sign_token(secret_key, _SESSION, value)


def decode(secret_key: str, cookie: str | None, now: datetime) -> Session | None:
    """The session a cookie carries when its signature is right and it has not expired."""
    if not cookie:
        return None
    value = verify_token(secret_key, _SESSION, cookie)
    if value is None:
        return None
    parts = value.split(_SEP)
    if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    shop_id, key_id, expires, nonce = parts
    if int(expires) <= now.timestamp():
        return None
    return Session(shop_id, int(key_id), int(expires), nonce)


def csrf_token(secret_key: str, nonce: str) -> str:
    """The CSRF token of a session (or of a sign-in form's cookie): bound to its nonce."""
    return sign_token(secret_key, _CSRF, nonce).rpartition(".")[2]


def csrf_matches(secret_key: str, nonce: str, given: str | None) -> bool:
    if not given or not nonce:
        return False
    return hmac.compare_digest(csrf_token(secret_key, nonce).encode(), given.encode())


def new_nonce() -> str:
    return secrets.token_urlsafe(12)
