"""Standard Webhooks signatures of an outgoing message (pure)."""

import base64
import hashlib
import hmac
from collections.abc import Sequence

from app.security import webhook_secret_bytes


def signature(secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` under each secret, space-separated: during a rotation's
    overlap the receiver may hold either secret, and one matching signature is enough."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1,"
        + base64.b64encode(
            hmac.new(webhook_secret_bytes(s), signed, hashlib.sha256).digest()
        ).decode()
        for s in secrets
    )


def headers(secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secrets, message_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": "Relance-Webhooks/1",
    }
