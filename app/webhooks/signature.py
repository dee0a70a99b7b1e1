"""Standard Webhooks 1.0 signature verification (the `svix-` header spellings too)."""

import base64
import hashlib
import hmac
from collections.abc import Mapping

from app.errors import InvalidSignature

TOLERANCE_SECONDS = 300


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(f"webhook-{name}") or headers.get(f"svix-{name}")
    if not value:
        raise InvalidSignature(f"Missing header webhook-{name}.")
    return value


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of one message."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(headers: Mapping[str, str], body: bytes, keys: tuple[bytes, ...], now: float) -> str:
    """Check the signature against every active secret; return the message id.

    Every candidate is compared in constant time, and every key is tried even after a
    match would be found, so timing says nothing about which secret or signature matched.
    """
    msg_id = _header(headers, "id")
    raw_ts = _header(headers, "timestamp")
    signatures = _header(headers, "signature").split()
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise InvalidSignature("Header webhook-timestamp is not Unix seconds.") from None
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise InvalidSignature("Header webhook-timestamp is more than 5 minutes from now.")
    given = [s.encode() for s in signatures if s.startswith("v1,")]
    valid = False
    for key in keys:
        expected = sign(key, msg_id, timestamp, body).encode()
        for candidate in given:
            valid |= hmac.compare_digest(expected, candidate)
    if not valid:
        raise InvalidSignature("No valid v1 signature for any active secret of this shop.")
    return msg_id
