"""PrestaShop customer-service threads, read from the Webservice and recorded as tickets.

A page of threads changed in the window (`date_upd`) and their messages is read outside any
transaction, then recorded through the tickets' batch write (`tickets.batch.record`) in chunks,
one transaction each, so a ticket's waiting times are derived exactly as for the API. A thread
closed in PrestaShop is then resolved at its `date_upd`, and a resolved one that PrestaShop
reopened is reopened, through the same status change the API's PATCH makes.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import transaction
from app.errors import AppError
from app.prestashop import mapping
from app.prestashop.client import Webservice, WebserviceError
from app.prestashop.importing import email_hash, erased_hashes
from app.prestashop.mapping import WsMessage, WsThread
from app.prestashop.vocabulary import RunStatus
from app.shops.service import ShopAuth
from app.tickets import batch
from app.tickets import service as tickets
from app.tickets.batch import TicketBatchItem
from app.tickets.vocabulary import DONE, TicketStatus

PAGE = 20  # threads per call; their messages are read together
MESSAGE_PAGE = 100  # messages per call: 100 of the longest bodies stay under the 8 MiB cap
MAX_THREADS = 500  # per run (reconciliation or backfill); the rest waits for the next run
MAX_THREAD_MESSAGES = 2_000  # the most one ticket holds (tickets.messages.MAX_MESSAGES)
# Messages read per run: past this, the run ends after the page it is on (200 calls or so,
# well inside the shop's lease); the next run goes on from there.
MAX_RUN_MESSAGES = 20_000
CHUNK_MESSAGES = 2_000  # per transaction, as one POST …/tickets/batch takes at most
MAX_NOTES = 20  # the report names the first ones and counts the rest
# Only what the mapping reads; `token` opens the thread to whoever holds it.
_THREAD_FIELDS = "[id,id_shop,id_lang,id_customer,id_order,email,status,date_add,date_upd]"
_MESSAGE_FIELDS = "[id,id_customer_thread,id_employee,message,private,date_add]"
_RESOURCES = ("customer_threads", "customer_messages")


@dataclass
class ThreadReport:
    """What a run did with the shop's threads. `complete`: every thread of the window was read
    and recorded; else `newest` is the `date_upd` (UTC) up to which they were."""

    threads: int = 0
    messages: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    permitted: bool = True
    complete: bool = True
    newest: datetime | None = None
    error: WebserviceError | None = None
    noted: int = 0
    read: int = 0  # messages read from the shop

    def note(self, text: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(text)
        self.noted += 1

    def as_dict(self) -> dict[str, Any]:
        """The report as the backfill's answer shows it."""
        return {
            "imported": self.permitted,
            "threads": self.threads,
            "messages": self.messages,
            "outcomes": dict(sorted(self.outcomes.items())),
            "notes": [*self.notes, *([str(self.error)] if self.error else [])],
        }

    def summary(self) -> str | None:
        """The notes as one line for the run's record, or None."""
        if not self.notes:
            return None
        more = self.noted - len(self.notes)
        return "; ".join(self.notes) + (f"; and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class _Thread:
    thread: WsThread
    updated_at: datetime | None
    items: list[dict[str, Any]]


def _parsed(resource: str, model: type[Any], raw: list[dict[str, Any]]) -> list[Any]:
    try:
        return [mapping.parse(model, item) for item in raw]
    except mapping.ShapeError as exc:
        raise WebserviceError(RunStatus.MALFORMED, "GET", resource, str(exc)) from None


async def _read_page(
    ws: Webservice, tz: str, since: datetime, until: datetime, offset: int
) -> list[WsThread]:
    window = f"[{mapping.local_text(since, tz)},{mapping.local_text(until, tz)}]"
    raw = await ws.rows(
        "customer_threads",
        {
            "display": _THREAD_FIELDS,
            "filter[date_upd]": window,
            "date": "1",
            "sort": "[date_upd_ASC]",
            "limit": f"{offset},{PAGE}",
        },
    )
    return _parsed("customer_threads", WsThread, raw)


async def _read_messages(
    ws: Webservice, threads: list[WsThread], report: ThreadReport
) -> dict[int, list[WsMessage]]:
    ids = "[" + "|".join(str(t.id) for t in threads) + "]"
    found: dict[int, list[WsMessage]] = {t.id: [] for t in threads}
    offset = 0
    while True:
        raw = await ws.rows(
            "customer_messages",
            {
                "display": _MESSAGE_FIELDS,
                "filter[id_customer_thread]": ids,
                "sort": "[id_ASC]",
                "limit": f"{offset},{MESSAGE_PAGE}",
            },
        )
        for m in _parsed("customer_messages", WsMessage, raw):
            if m.id_customer_thread in found:  # the shop answered what was asked, no more
                found[m.id_customer_thread].append(m)
        offset += len(raw)
        report.read += len(raw)
        if len(raw) < MESSAGE_PAGE or offset >= PAGE * MAX_THREAD_MESSAGES:
            break
    for thread_id, messages in found.items():
        if len(messages) > MAX_THREAD_MESSAGES:
            report.note(
                f"{mapping.thread_external_id(thread_id)}: only the first "
                f"{MAX_THREAD_MESSAGES} messages imported"
            )
            found[thread_id] = messages[:MAX_THREAD_MESSAGES]
    return found


def _valid(entry: _Thread, report: ThreadReport) -> list[TicketBatchItem] | None:
    try:
        return [TicketBatchItem.model_validate(item) for item in entry.items]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        report.note(f"{mapping.thread_external_id(entry.thread.id)}: {where}: {first['msg']}")
        return None


def _chunks(entries: list[tuple[_Thread, list[TicketBatchItem]]]) -> list[list[Any]]:
    """Consecutive threads, each whole, holding at most CHUNK_MESSAGES messages together."""
    chunks: list[list[Any]] = []
    size = CHUNK_MESSAGES + 1
    for entry in entries:
        count = sum(len(i.messages) for i in entry[1])
        if size + count > CHUNK_MESSAGES:
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += count
    return chunks


async def _status(
    conn: AsyncConnection, shop_id: str, entry: _Thread, ticket: dict[str, Any], now: datetime
) -> str | None:
    """Follow PrestaShop's status: resolve a ticket closed there, reopen one it reopened."""
    closed = mapping.resolved(entry.thread.status)
    done = ticket["status"] in DONE
    if closed == done:
        return None
    at = max(entry.updated_at or now, ticket["created_at"])
    status = TicketStatus.RESOLVED if closed else TicketStatus.OPEN
    await tickets.update_ticket(conn, shop_id, ticket["id"], {"status": status, "at": at}, now)
    return "resolved" if closed else "reopened"


async def _record(
    conn: AsyncConnection,
    shop: ShopAuth,
    chunk: list[tuple[_Thread, list[TicketBatchItem]]],
    now: datetime,
    report: ThreadReport,
) -> None:
    items: list[tuple[int, TicketBatchItem]] = []
    owner: list[_Thread] = []
    for entry, valid in chunk:
        for item in valid:
            items.append((len(items), item))
            owner.append(entry)
    outcomes = await batch.record(conn, shop.id, items, now)
    last: dict[int, tuple[_Thread, dict[str, Any]]] = {}
    failed: set[int] = set()
    for outcome in outcomes:
        entry = owner[outcome.index]
        if outcome.error is not None:
            failed.add(entry.thread.id)
            ext = mapping.thread_external_id(entry.thread.id)
            report.note(f"{ext}: {outcome.error.detail}")
            continue
        assert outcome.ticket is not None
        added = sum(1 for _, code, _ in outcome.messages if code == 201)
        report.messages += added
        first = entry.thread.id not in last
        last[entry.thread.id] = (entry, outcome.ticket)
        if first:  # a thread's later items (over 200 messages) count with its first
            created = outcome.ticket_status == 201
            report.outcomes["created" if created else "updated" if added else "unchanged"] += 1
    if failed:
        report.outcomes["failed"] += len(failed)
    for thread_id, (entry, ticket) in last.items():
        if thread_id in failed:
            continue
        change = await _status(conn, shop.id, entry, ticket, now)
        if change:
            report.outcomes[change] += 1


async def _erased(conn: AsyncConnection, shop: ShopAuth, threads: list[WsThread]) -> set[int]:
    emails = [t.email for t in threads if t.email]
    hashes = await erased_hashes(conn, shop, emails)
    return {t.id for t in threads if t.email and email_hash(shop, t.email) in hashes}


async def import_threads(
    engine: AsyncEngine,
    ws: Webservice,
    shop: ShopAuth,
    languages: dict[int, str],
    since: datetime,
    until: datetime,
    *,
    now: datetime,
    dry_run: bool = False,
) -> ThreadReport:
    """Record the threads changed in [since, until] (UTC) as tickets, oldest change first.

    Never raises a Webservice failure: a key without GET on the two resources is noted and
    `permitted` is False; another failure is `error`, with what was recorded before it kept.
    A dry run reads and checks, and records nothing.
    """
    report = ThreadReport()
    tz = shop.settings.timezone
    try:
        for number in range(-(-MAX_THREADS // PAGE)):
            read = await _read_page(ws, tz, since, until, number * PAGE)
            page = list({t.id: t for t in read}.values())  # one thread, once
            messages = await _read_messages(ws, page, report) if page else {}
            async with transaction(engine, read_only=True) as conn:
                erased = await _erased(conn, shop, page)
            entries: list[tuple[_Thread, list[TicketBatchItem]]] = []
            for thread in page:
                report.threads += 1
                if thread.id in erased:
                    report.outcomes["erased"] += 1
                    continue
                items, notes = mapping.thread_items(
                    thread, messages.get(thread.id, []), languages, tz
                )
                for text in notes:
                    report.note(text)
                entry = _Thread(thread, mapping.local_moment(thread.date_upd, tz), items)
                valid = _valid(entry, report) if items else None
                if valid is None:
                    report.outcomes["invalid"] += 1
                    continue
                entries.append((entry, valid))
            if not dry_run:
                for chunk in _chunks(entries):
                    async with transaction(engine) as conn:
                        await _record(conn, shop, chunk, now, report)
            seen = [m for t in page if (m := mapping.local_moment(t.date_upd, tz)) is not None]
            if seen:
                report.newest = min(max(seen), until)
            if len(read) < PAGE:
                return report
            if report.read >= MAX_RUN_MESSAGES:
                break
        report.complete = False
        report.note(
            f"threads cut short at {MAX_THREADS} threads or {MAX_RUN_MESSAGES} messages, "
            f"oldest changes first: recorded up to {report.newest:%Y-%m-%d %H:%M:%S} UTC"
            if report.newest
            else f"threads cut short at {MAX_THREADS} threads or {MAX_RUN_MESSAGES} messages"
        )
    except WebserviceError as exc:
        report.complete = False
        if exc.resource in _RESOURCES and exc.status in (
            RunStatus.UNAUTHORIZED,
            RunStatus.NOT_FOUND,
        ):
            report.permitted = False
            missing = (
                f"GET permission on {exc.resource} missing"
                if exc.status == RunStatus.UNAUTHORIZED
                else f"the Webservice has no {exc.resource} resource"
            )
            report.notes.insert(0, f"customer threads not imported: {missing}")
        else:
            report.error = exc
    except AppError as exc:  # the batch write gave up on a race it kept losing
        report.complete = False
        report.note(f"customer threads: {exc.detail}")
    return report


def progress(report: ThreadReport, since: datetime, until: datetime) -> datetime:
    """Up to when the shop's threads are recorded: where the next run may start."""
    if report.complete:
        return until
    return max(report.newest or since, since)
