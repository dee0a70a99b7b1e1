"""The dispatcher tick: claim due e-mails in small batches, re-check, render, send, record."""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from app import counters
from app.config import Settings
from app.db import transaction, utcnow
from app.dispatch import outcomes, service
from app.dispatch.pacing import RateLimiter, Throttle
from app.dispatch.recording import DatabaseLost, Outcomes, TickStats
from app.dispatch.service import Claim
from app.errors import is_database_unavailable
from app.mail.message import Outgoing
from app.mail.review_request import ReviewEmail, compose
from app.mail.transport import (
    FileTransport,
    RecipientRejected,
    SendError,
    Throttled,
    TransientError,
    Transport,
    Utf8Unsupported,
    transport_from_url,
)
from app.periodic import PeriodicJob, worker_name
from app.requests.exclusions import excluded_by
from app.requests.rules import skip_reason
from app.requests.vocabulary import Kind, Reason, Status
from app.security import address_key, decrypt
from app.shops.dkim import sign as dkim_sign

log = logging.getLogger("relance.dispatch")

MAX_BACKOFF = timedelta(hours=6)
TAKE_OVER_EVERY = timedelta(seconds=10)  # between two looks for claims whose lease expired
DUE_SHOPS_EVERY = timedelta(seconds=1)  # a shop newly due waits at most this for its turn
THROTTLED_TURNS = 4  # a message the relay throttled this often is retried later instead
THROTTLED_PAUSE = 1.0  # seconds before it is offered again; doubles each turn


@dataclass
class _Run:
    """One tick: claimed e-mails wait in `queue` for a connection; the leftovers go back."""

    now: datetime | None  # pinned clock (tests), else read per message
    queue: asyncio.Queue[Claim | None]
    stats: TickStats = field(default_factory=TickStats)
    leftover: list[Claim] = field(default_factory=list)  # released when the tick ends
    ending: bool = False  # the database is lost: claim no more, give the rest back
    in_flight: int = 0
    finished: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def clock(self) -> datetime:
        return self.now or utcnow()


class _Connections:
    """One sender's SMTP connections: to the relay, and to each shop's own server it met."""

    def __init__(self, relay: Transport, secret_key: str, timeout: float) -> None:
        self.relay = relay
        self._secret_key = secret_key
        self._timeout = timeout
        self._own: dict[str, Transport] = {}

    def of_shop(self, encrypted_url: str) -> Transport:
        own = self._own.get(encrypted_url)
        if own is None:
            url = decrypt(self._secret_key, encrypted_url)
            own = self._own[encrypted_url] = transport_from_url(url, self._timeout)
        return own

    async def close(self) -> None:
        for transport in (self.relay, *self._own.values()):
            await transport.close()
        self._own.clear()


class Dispatcher:
    """Runs ticks; `stop()` lets in-flight messages finish, then releases the rest.

    A tick claims due e-mails a batch at a time, ahead of need, and `smtp_concurrency`
    senders, each with its own reused connection, take them in turn. Each message is marked
    as being sent (its Message-ID committed) by the claim, before any SMTP; each outcome is
    committed as soon as the relay answered, and only if the claim is still ours.
    """

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
        self._dry_run = FileTransport(Path(settings.dry_run_outbox))
        self._lock = asyncio.Lock()
        self._address_key = address_key(settings.secret_key)
        self._rate = RateLimiter(settings.smtp_rate)
        # Per relay (the configured one: "", a shop's own: its encrypted URL), across ticks.
        self._throttles: dict[str, Throttle] = {}
        self._after_shop = ""  # round robin across shops, from one claim to the next
        self._next_take_over: datetime | None = None
        self._due_shops: list[str] = []
        self._due_shops_at: datetime | None = None
        self._outcomes = Outcomes(engine, self.worker, settings, self._address_key)
        self._stopping = False

    async def tick(self, now: datetime | None = None) -> TickStats:
        """Send everything due. `now` pins the clock (tests); by default it is read each time."""
        if self._stopping or self._lock.locked():
            return TickStats()
        async with self._lock:
            concurrency = self.settings.smtp_concurrency
            run = _Run(now, asyncio.Queue(maxsize=max(concurrency, self.settings.claim_batch)))
            senders = [asyncio.create_task(self._sender(run)) for _ in range(concurrency)]
            try:
                await self._feed(run)
            finally:
                for _ in senders:
                    await run.queue.put(None)
                await asyncio.gather(*senders)
                await self._outcomes.release(run.leftover, run.clock(), run.stats)
        stats = run.stats
        if stats.sent or stats.skipped or stats.failed or stats.retried:
            log.info(
                "dispatch tick: sent=%d skipped=%d failed=%d retried=%d released=%d throttled=%d",
                stats.sent,
                stats.skipped,
                stats.failed,
                stats.retried,
                stats.released,
                stats.throttled,
            )
        return stats

    async def stop(self) -> None:
        """Wait for the running tick: in-flight messages finish, the rest is released."""
        self._stopping = True
        async with self._lock:
            pass

    async def _feed(self, run: _Run) -> None:
        """Claim batch after batch while e-mails are due; the queue's bound paces it."""
        while not (self._stopping or run.ending):
            finished = run.finished
            batch = await self._claim(run.clock())
            if not batch.claims:
                if batch.deferred and (run.in_flight or run.finished != finished):
                    # A customer's other e-mail is (or was, when we claimed) in flight: once
                    # it is recorded, the deferred one can be claimed, and the cooldown
                    # sees the first.
                    if run.finished == finished:
                        run.progress.clear()
                        await run.progress.wait()
                    continue
                return
            for claim in batch.claims:
                await run.queue.put(claim)

    async def _sender(self, run: _Run) -> None:
        """One SMTP conversation at a time, on its own connection, until the tick ends."""
        connections = _Connections(
            self._transport_factory(), self.settings.secret_key, self.settings.smtp_timeout
        )
        try:
            while (claim := await run.queue.get()) is not None:
                if self._stopping or run.ending or claim.shop_id in run.stats.paused_shops:
                    run.leftover.append(claim)
                    continue
                run.in_flight += 1
                try:
                    await self._deliver(claim, run, connections)
                except DatabaseLost:
                    # Its outcome could not be recorded within the lease: what is left is
                    # given back if the database answers again, else its lease expires.
                    run.ending = True
                except Exception:
                    # Even recording failed: this one waits for its lease, the others go on.
                    log.exception("delivery %s: outcome not recorded", claim.delivery_id)
                finally:
                    run.in_flight -= 1
                    run.finished += 1
                    run.progress.set()
        finally:
            await connections.close()

    async def _claim(self, now: datetime) -> service.Batch:
        # Expired leases (a worker died) are looked for at most every TAKE_OVER_EVERY
        # seconds: a statement less in nearly every claim of a long backlog.
        take_over = self._next_take_over is None or now >= self._next_take_over
        if take_over:
            self._next_take_over = now + TAKE_OVER_EVERY
        # Which shops have e-mails due is read again every DUE_SHOPS_EVERY, and whenever a
        # claim on the list read before comes back empty.
        reuse = self._due_shops_at is not None and now < self._due_shops_at + DUE_SHOPS_EVERY
        batch = await self._claim_once(now, take_over, self._due_shops if reuse else None)
        if reuse and not batch.claims and not batch.deferred:
            batch = await self._claim_once(now, take_over, None)
        return batch

    async def _claim_once(
        self, now: datetime, take_over: bool, due_shops: list[str] | None
    ) -> service.Batch:
        try:
            async with transaction(self.engine) as conn:
                batch = await service.claim(
                    conn,
                    worker=self.worker,
                    now=now,
                    lease=self.settings.claim_lease,
                    limit=self.settings.claim_batch,
                    message_domain=self.settings.message_id_domain,
                    after_shop=self._after_shop,
                    take_over=take_over,
                    due_shops=due_shops,
                )
                await service.attach_suppressed(conn, batch.claims, self._address_key)
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            log.warning("dispatch: database unavailable (%s); next tick", type(exc).__name__)
            return service.Batch([])
        self._after_shop = batch.last_shop
        if due_shops is None:
            self._due_shops, self._due_shops_at = batch.due_shops, now
        return batch

    async def _deliver(self, claim: Claim, run: _Run, connections: _Connections) -> None:
        """Re-check, render, send and record one e-mail. Errors stay with this delivery."""
        stats = run.stats
        now = run.clock()
        try:
            rule = self._exclusion(claim)
            reason = self._skip_reason(claim, now, excluded=rule is not None)
            if reason is not None:
                error = rule if reason is Reason.EXCLUDED else None
                await self._outcomes.final(claim, now, stats, Status.SKIPPED, reason, error)
                return
            reminder = outcomes.next_reminder(claim, now)
        except DatabaseLost:
            raise
        except Exception as exc:
            await self._outcomes.internal_error(claim, now, exc, stats)
            return
        try:
            message = self._message(claim, now)
        except Exception as exc:  # a template bug must not wedge the queue
            log.error("delivery %s: rendering failed: %s", claim.delivery_id, type(exc).__name__)
            error = f"{type(exc).__name__}: {exc}"[:500]
            await self._outcomes.final(
                claim, now, stats, Status.FAILED, Reason.RENDER_FAILED, error
            )
            return
        dry_run = claim.settings.dry_run
        transport: Transport
        if dry_run:
            transport, relay = self._dry_run, "dry-run"
        elif claim.mail_server is not None:
            transport, relay = connections.of_shop(claim.mail_server), claim.mail_server
        else:
            transport, relay = connections.relay, ""
        throttle = self._throttle(relay, claim.mail_server_connections)
        if await self._send(claim, message, transport, throttle, run):
            sent = outcomes.Sent(claim, now, reminder, dry_run)
            if await self._outcomes.sent.record(sent, self._outcomes.deadline(claim, now)):
                stats.sent += 1
                counters.delivery_finished(Status.SENT, None)
            else:
                stats.lost += 1

    async def _send(
        self, claim: Claim, message: Outgoing, transport: Transport, throttle: Throttle, run: _Run
    ) -> bool:
        """Hand the message to SMTP; True when the relay took it (else its outcome is recorded,
        or it is left to release)."""
        stats = run.stats
        sender = claim.settings.from_email or self.settings.default_from
        margin = timedelta(seconds=2 * self.settings.smtp_timeout)
        for turn in range(THROTTLED_TURNS):
            async with throttle.slot():
                now = run.clock()
                try:
                    await transport.ready()
                    await self._rate.wait()
                    # Never start an SMTP conversation that could outlive our lease.
                    now = run.clock()
                    late = run.now is None and now + margin > claim.lease_until
                    if self._stopping or run.ending:
                        run.leftover.append(claim)
                        return False
                    if late:
                        # Given back now, not at the end of the tick: held until then, it
                        # would stay "sending" past its lease, for another worker to take
                        # over while this one still lists it. If the database is away, the
                        # end of the tick tries again (it may be back by then).
                        if not await self._outcomes.release([claim], now, stats):
                            run.leftover.append(claim)
                        return False
                    await transport.send(message, sender, claim.email)
                    await throttle.accepted()
                    return True
                except Throttled as exc:
                    counters.smtp_error("throttled")
                    stats.throttled += 1
                    throttle.slow_down()
                    slowed = exc
                except SendError as exc:
                    await self._send_failed(claim, now, exc, stats)
                    return False
                except Exception as exc:
                    # Whether the message left is unknown: the next goes on a fresh connection.
                    counters.smtp_error("internal")
                    await transport.close()
                    await self._outcomes.internal_error(claim, now, exc, stats)
                    return False
            # Back in line, outside the slot: the others go on at the lowered concurrency.
            await asyncio.sleep(THROTTLED_PAUSE * 2**turn)
        # Still refused after several turns: an ordinary temporary failure, retried later.
        await self._outcomes.retry(claim, run.clock(), Reason.SMTP_UNAVAILABLE, str(slowed), stats)
        return False

    async def _send_failed(
        self, claim: Claim, now: datetime, exc: SendError, stats: TickStats
    ) -> None:
        if isinstance(exc, RecipientRejected):
            counters.smtp_error("recipient_rejected")
            if exc.code is not None and 500 <= exc.code < 600:
                await self._outcomes.bounced(claim, now, stats, str(exc))
            else:
                await self._outcomes.final(
                    claim, now, stats, Status.FAILED, Reason.RECIPIENT_REJECTED, str(exc)
                )
        elif isinstance(exc, Utf8Unsupported):
            counters.smtp_error("smtputf8_unsupported")
            await self._outcomes.final(
                claim, now, stats, Status.FAILED, Reason.SMTPUTF8_UNSUPPORTED, str(exc)
            )
        elif isinstance(exc, TransientError):
            counters.smtp_error("transient")
            await self._outcomes.retry(claim, now, Reason.SMTP_UNAVAILABLE, str(exc), stats)
        else:
            counters.smtp_error("permanent")
            await self._outcomes.pause(claim, now, str(exc), stats)

    def _throttle(self, relay: str, most: int | None = None) -> Throttle:
        """The back-off of one relay; a shop's server may allow fewer conversations."""
        ceiling = min(self.settings.smtp_concurrency, most or self.settings.smtp_concurrency)
        throttle = self._throttles.get(relay)
        if throttle is None or throttle.ceiling != ceiling:
            throttle = self._throttles[relay] = Throttle(ceiling)
        return throttle

    def _exclusion(self, claim: Claim) -> str | None:
        order = claim.order
        return excluded_by(
            claim.settings.exclusions,
            email_normalized=claim.email_normalized,
            product_ids=[int(p["id"]) for p in order.products],
            group_ids=order.group_ids,
            total_paid=order.total_paid,
            newsletter=order.newsletter,
        )

    def _skip_reason(self, claim: Claim, now: datetime, excluded: bool) -> Reason | None:
        order = claim.order
        return skip_reason(
            settings=claim.settings,
            order_state_id=order.state_id,
            paid_at=order.paid_at,
            last_sent_to_customer=claim.last_sent_to_customer,
            trigger_at=claim.trigger_at,
            is_first=claim.kind == Kind.FIRST,
            now=now,
            reviewed=claim.reviewed,
            suppressed=claim.suppressed,
            excluded=excluded,
        )

    def _message(self, claim: Claim, now: datetime) -> Outgoing:
        settings = claim.settings
        order = claim.order
        email = ReviewEmail(
            public_id=claim.public_id,
            message_id=claim.message_id,
            to=claim.email,
            language=claim.language,
            is_reminder=claim.kind == Kind.REMINDER,
            shop_name=claim.shop_name,
            timezone=settings.timezone,
            firstname=order.firstname,
            lastname=order.lastname,
            order_reference=order.reference,
            ordered_at=order.ordered_at,
            products=order.products,
            from_email=settings.from_email or self.settings.default_from,
            from_name=settings.from_name or claim.shop_name,
            reply_to=settings.reply_to,
        )
        message = compose(
            email,
            public_url=self.settings.public_url,
            secret_key=self.settings.secret_key,
            now=now,
            render=claim.renderer(),
            headers={"X-Relance-Dry-Run": "1"} if settings.dry_run else None,
        )
        if claim.dkim is None:
            return message
        domain, selector, key = claim.dkim
        signed = dkim_sign(
            message.data,
            domain=domain,
            selector=selector,
            encrypted_key=key,
            secret_key=self.settings.secret_key,
        )
        return Outgoing(message.message_id, signed)


def jobs(engine: AsyncEngine, settings: Settings) -> list[PeriodicJob]:
    """The dispatcher tick, every `RELANCE_DISPATCH_INTERVAL` seconds."""
    dispatcher = Dispatcher(engine, settings)
    return [PeriodicJob("dispatch", settings.dispatch_interval, dispatcher.tick, dispatcher.stop)]
