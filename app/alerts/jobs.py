"""The alerts' periodic job: claim due alerts with a lease, send each, record what happened."""

import logging
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid

from sqlalchemy.ext.asyncio import AsyncEngine

from app.alerts import service
from app.config import Settings
from app.db import transaction, utcnow
from app.mail.message import Outgoing
from app.mail.transport import SendError, transport_from_url
from app.periodic import PeriodicJob, worker_name

log = logging.getLogger("relance.alerts")
BATCH = 20


async def send_due(engine: AsyncEngine, settings: Settings, worker: str) -> int:
    """Send every due alert through RELANCE_MAIL_URL; how many were sent."""
    sent = 0
    transport = transport_from_url(settings.mail_url, settings.smtp_timeout)
    try:
        while True:
            now = utcnow()
            async with transaction(engine) as conn:
                alerts = await service.claim(conn, worker, now, settings.claim_lease, BATCH)
            if not alerts:
                return sent
            for alert in alerts:
                message = MIMEText(alert.body, "plain", "utf-8")
                message["Subject"] = alert.subject
                message["From"] = settings.default_from
                message["To"] = alert.to_email
                message["Date"] = format_datetime(now)
                message_id = make_msgid(domain=settings.message_id_domain)
                message["Message-ID"] = message_id
                message["Auto-Submitted"] = "auto-generated"
                error = None
                try:
                    await transport.send(
                        Outgoing(message_id, message.as_bytes()),
                        settings.default_from,
                        alert.to_email,
                    )
                    sent += 1
                except SendError as exc:
                    error = str(exc)
                    log.warning("alert %s not sent: %s", alert.id, type(exc).__name__)
                async with transaction(engine) as conn:
                    await service.record(conn, alert.id, worker, utcnow(), error, alert.attempts)
    finally:
        await transport.close()


def jobs(engine: AsyncEngine, settings: Settings) -> list[PeriodicJob]:
    worker = worker_name()

    async def run() -> int:
        return await send_due(engine, settings, worker)

    async def stop() -> None:
        return None

    return [PeriodicJob("alerts", settings.dispatch_interval, run, stop)]
