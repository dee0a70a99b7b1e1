"""The dispatcher tick: claim due e-mails in small batches, re-check, render, send, record."""

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import transaction, utcnow
from app.dispatch import service
from app.dispatch.service import Claim
from app.mail.message import Outgoing, build
from app.mail.templates import localized_date, render_review_request
from app.mail.transport import (
    PermanentError,
    RecipientRejected,
    TransientError,
    Transport,
    transport_from_url,
)
from app.requests.rules import skip_reason
from app.security import sign_token
from app.shops import service as shops

log = logging.getLogger("relance.dispatch")

MAX_BACKOFF = timedelta(hours=6)


def worker_name() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class TickStats:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    released: int = 0
    lost: int = 0
    paused_shops: set[str] = field(default_factory=set)


class Dispatcher:
    """Runs ticks; `stop()` lets the running tick finish its current message, then releases."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        transport_factory: Callable[[], Transport] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.worker = worker_name()
        self._transport_factory = transport_factory or (
            lambda: transport_from_url(settings.mail_url, settings.smtp_timeout)
        )
        self._lock = asyncio.Lock()
        self._stopping = False

    async def tick(self, now: datetime | None = None) -> TickStats:
        """Send everything due. `now` pins the clock (tests); by default it is read each batch."""
        stats = TickStats()
        if self._stopping or self._lock.locked():
            return stats
        async with self._lock:
            transport = self._transport_factory()
            try:
                while not self._stopping:
                    batch_now = now or utcnow()
                    async with transaction(self.engine) as conn:
                        claims = await service.claim(
                            conn,
                            worker=self.worker,
                            now=batch_now,
                            lease=self.settings.claim_lease,
                            limit=self.settings.claim_batch,
                            message_domain=self.settings.message_id_domain,
                        )
                    if not claims:
                        break
                    await self._send_batch(claims, transport, now, stats)
            finally:
                await transport.close()
        if stats.sent or stats.skipped or stats.failed or stats.retried:
            log.info(
                "dispatch tick: sent=%d skipped=%d failed=%d retried=%d released=%d",
                stats.sent,
                stats.skipped,
                stats.failed,
                stats.retried,
                stats.released,
            )
        return stats

    async def stop(self) -> None:
        """Wait for the running tick: it stops after its current message and releases the rest."""
        self._stopping = True
        async with self._lock:
            pass

    async def _send_batch(
        self, claims: list[Claim], transport: Transport, now: datetime | None, stats: TickStats
    ) -> None:
        sent_now: dict[tuple[str, str], datetime] = {}
        margin = timedelta(seconds=2 * self.settings.smtp_timeout)
        for index, claim in enumerate(claims):
            moment = now or utcnow()
            # Never start an SMTP conversation that could outlive our lease: give the rest back.
            if self._stopping or (now is None and moment + margin > claim.lease_until):
                await self._release(claims[index:], moment, stats)
                return
            if claim.shop_id in stats.paused_shops:
                await self._release([claim], moment, stats)
                continue
            key = (claim.shop_id, claim.email_normalized)
            if claim.kind == "first" and key in sent_now:
                claim.last_sent_to_customer = sent_now[key]
            if await self._deliver(claim, transport, moment, stats):
                sent_now[key] = moment

    async def _deliver(
        self, claim: Claim, transport: Transport, now: datetime, stats: TickStats
    ) -> bool:
        reason = skip_reason(
            settings=claim.settings,
            order_state_id=claim.order["state_id"],
            paid_at=claim.order["paid_at"],
            last_sent_to_customer=claim.last_sent_to_customer,
            trigger_at=claim.trigger_at,
            is_first=claim.kind == "first",
            now=now,
        )
        if reason is not None:
            await self._record(service.mark_final, claim, now, "skipped", reason)
            stats.skipped += 1
            return False
        try:
            message = self._message(claim, now)
        except Exception as exc:  # a template bug must not wedge the queue
            log.exception("delivery %s: rendering failed", claim.delivery_id)
            error = f"{type(exc).__name__}: {exc}"[:500]
            await self._record(service.mark_final, claim, now, "failed", "render_failed", error)
            stats.failed += 1
            return False
        sender = claim.settings.from_email or self.settings.default_from
        try:
            await transport.send(message, sender, claim.email)
        except RecipientRejected as exc:
            await self._record(
                service.mark_final, claim, now, "failed", "recipient_rejected", str(exc)
            )
            stats.failed += 1
            return False
        except TransientError as exc:
            await self._transient(claim, now, str(exc), stats)
            return False
        except PermanentError as exc:
            await self._pause(claim, now, str(exc), stats)
            return False
        if await self._record(service.mark_sent, claim, now):
            stats.sent += 1
        else:
            stats.lost += 1
        return True

    async def _release(self, claims: list[Claim], now: datetime, stats: TickStats) -> None:
        async with transaction(self.engine) as conn:
            await service.release(conn, claims, self.worker, now)
        stats.released += len(claims)

    async def _record(
        self, fn: Callable[..., object], claim: Claim, now: datetime, *args: object
    ) -> bool:
        async with transaction(self.engine) as conn:
            done = await fn(conn, claim, self.worker, now, *args)  # type: ignore[misc]
        if not done:
            log.warning(
                "delivery %s: claim lost before its outcome was recorded", claim.delivery_id
            )
        return bool(done)

    async def _transient(self, claim: Claim, now: datetime, error: str, stats: TickStats) -> None:
        if claim.attempts >= self.settings.max_attempts:
            await self._record(service.mark_final, claim, now, "failed", "smtp_unavailable", error)
            stats.failed += 1
            return
        backoff = min(
            timedelta(seconds=self.settings.retry_base * 2 ** (claim.attempts - 1)), MAX_BACKOFF
        )
        async with transaction(self.engine) as conn:
            await service.retry_later(conn, claim, self.worker, now, now + backoff, error)
        stats.retried += 1

    async def _pause(self, claim: Claim, now: datetime, error: str, stats: TickStats) -> None:
        log.error("shop %s: sending paused: %s", claim.shop_id, error)
        async with transaction(self.engine) as conn:
            await shops.pause_sending(conn, claim.shop_id, error, now)
            await service.release(conn, [claim], self.worker, now)
        stats.paused_shops.add(claim.shop_id)

    def _message(self, claim: Claim, now: datetime) -> Outgoing:
        token = sign_token(self.settings.secret_key, "review", str(claim.request_id))
        review_url = f"{self.settings.public_url.rstrip('/')}/r/{token}"
        order = claim.order
        context = {
            "shop_name": claim.shop_name,
            "firstname": order["firstname"],
            "order_reference": order["reference"],
            "order_date": localized_date(
                order["ordered_at"], claim.language, claim.settings.timezone
            ),
            "products": order["products"] or [],
            "review_url": review_url,
            "star_urls": [f"{review_url}?rating={n}" for n in range(1, 6)],
            "is_reminder": claim.kind == "reminder",
        }
        rendered = render_review_request(claim.language, context)
        return build(
            rendered=rendered,
            to=claim.email,
            from_email=claim.settings.from_email or self.settings.default_from,
            from_name=claim.settings.from_name or claim.shop_name,
            reply_to=claim.settings.reply_to,
            message_id=claim.message_id,
            date=now,
            language=claim.language,
        )
