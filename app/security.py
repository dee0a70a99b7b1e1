"""Admin token, hashed API keys, encrypted secrets and signed page tokens."""

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken

API_KEY_PREFIX = "rlk_"
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def new_id(prefix: str) -> str:
    """An opaque, unguessable identifier such as `shp_4fJ…`."""
    return prefix + secrets.token_urlsafe(12).replace("-", "a").replace("_", "b")


def new_public_id() -> str:
    """96 random bits, URL-safe: what a customer's link carries instead of a row id."""
    return secrets.token_urlsafe(12)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # API keys are 256 random bits: a fast hash is enough (no dictionary to attack), and it
    # lets a key be checked on every request without a slow KDF.
    return hashlib.sha256(key.encode()).hexdigest()


def new_webhook_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_secret_bytes(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (`whsec_` + base64)."""
    return base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX))


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"relance-encryption\0" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(secret_key: str, plaintext: str) -> str:
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


def decrypt(secret_key: str, token: str) -> str:
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError(
            "stored secret cannot be decrypted: was RELANCE_SECRET_KEY changed?"
        ) from exc


# Purposes of page tokens: a token signed for one never opens the other.
REVIEW = "review"
UNSUBSCRIBE = "unsubscribe"


def sign_token(secret_key: str, purpose: str, value: str) -> str:
    """A URL-safe token `value.signature` binding a value to one purpose (review, unsubscribe)."""
    return f"{value}.{_token_mac(secret_key, purpose, value)}"


def verify_token(secret_key: str, purpose: str, token: str) -> str | None:
    """The value a token carries when its signature is right for `purpose`, else None.

    Compared in constant time, before any database look-up: a tampered token costs nothing.
    """
    value, _, mac = token.rpartition(".")
    if not value or len(token) > 200:
        return None
    expected = _token_mac(secret_key, purpose, value)
    return value if hmac.compare_digest(expected.encode(), mac.encode()) else None


def _token_mac(secret_key: str, purpose: str, value: str) -> str:
    key = hashlib.sha256(b"relance-token\0" + secret_key.encode()).digest()
    mac = hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


@lru_cache(maxsize=8)
def address_key(secret_key: str) -> bytes:
    """The key of the keyed hash of e-mail addresses, derived from the secret key.

    A sub-key, so code that only needs to recognise an address is handed no more than that.
    """
    return hashlib.sha256(b"relance-address\0" + secret_key.encode()).digest()


def address_hash(key: bytes, normalized: str) -> str:
    """HMAC-SHA256 (64 hex digits) of a normalised address: the suppression list's key.

    Keyed, so a leaked table cannot be reversed by hashing lists of known addresses (a new
    RELANCE_SECRET_KEY therefore changes every hash).
    """
    return hmac.new(key, normalized.encode(), hashlib.sha256).hexdigest()


def admin_token_matches(expected: str | None, given: str) -> bool:
    return expected is not None and hmac.compare_digest(expected.encode(), given.encode())
