"""The waiting times of a ticket, derived from its messages and status history (pure).

Calendar: Monday to Friday 09:00-18:00 in Europe/Paris (UTC+1 in early March 2026, before
the change of 29 March). Friday 6 March 2026 is a Friday; Monday 9 March the next Monday.
"""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.tickets.calendar import default_calendar
from app.tickets.timing import (
    MessageFacts,
    StatusFacts,
    acknowledged,
    compute,
    status_at,
    status_timing,
)
from app.tickets.vocabulary import Acknowledged

PARIS = ZoneInfo("Europe/Paris")
CAL = default_calendar("Europe/Paris")


def paris(day: int, hour: int, minute: int = 0) -> datetime:
    """A time of March 2026 in Paris, as UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


def customer(id_: int, at: datetime, needs_reply: bool = True, **kw: bool) -> MessageFacts:
    return MessageFacts(
        id_, "customer", kw.get("public", True), kw.get("automatic", False), needs_reply, at
    )


def agent(id_: int, at: datetime, author: str = "agent", **kw: bool) -> MessageFacts:
    return MessageFacts(id_, author, kw.get("public", True), kw.get("automatic", False), False, at)


def test_a_friday_evening_message_answered_on_monday_waited_two_business_hours() -> None:
    asked, answered = paris(6, 17), paris(9, 10)  # Friday 17:00, Monday 10:00
    t = compute([customer(1, asked), agent(2, answered)], CAL, created_at=asked, resolved_at=None)
    m = t.messages[1]
    assert (m.answered_by, m.answered_at) == (2, answered)
    # Friday 17:00-18:00 (1 h) + Monday 09:00-10:00 (1 h) = 2 business hours.
    assert m.reply_business_s == 2 * 3600
    # Friday 17:00 -> Monday 10:00: 2 days and 17 hours = 65 h of the clock.
    assert m.reply_calendar_s == 65 * 3600
    # 24 business hours from Friday 17:00: Fri 1 h, Mon 9 h, Tue 9 h (19 h), then 5 h on
    # Wednesday from 09:00 -> Wednesday 11 March 14:00 in Paris.
    assert m.deadline_at == paris(11, 14)
    ticket = t.ticket
    assert ticket.first_needing_at == ticket.first_customer_at == asked
    assert (ticket.first_reply_at, ticket.ack_deadline_at) == (answered, paris(11, 14))
    assert (ticket.first_reply_business_s, ticket.first_reply_calendar_s) == (7200, 234_000)
    assert (ticket.replies, ticket.exchanges) == (1, 2)
    assert ticket.period_date == date(2026, 3, 6)
    assert t.messages[2].answered_by is None and t.messages[2].deadline_at is None


def test_a_closing_thanks_needs_no_reply_and_waits_for_none() -> None:
    asked, answered, thanks = paris(9, 9), paris(9, 11), paris(9, 12)
    t = compute(
        [customer(1, asked), agent(2, answered), customer(3, thanks, needs_reply=False)],
        CAL,
        created_at=asked,
        resolved_at=None,
    )
    thanked = t.messages[3]
    # Nothing waits on the thanks: no deadline, no answer, and the ticket's figures are those
    # of the first exchange (9:00 -> 11:00 = 2 business hours = 7,200 s).
    assert (thanked.deadline_at, thanked.answered_by, thanked.reply_business_s) == (
        None,
        None,
        None,
    )
    assert t.ticket.first_reply_business_s == 7200
    assert t.ticket.exchanges == 3  # the thanks is still an exchange
    # A thanks alone on a ticket: nothing needs a reply, the ticket counts from its creation.
    alone = compute(
        [customer(1, paris(7, 10), needs_reply=False)],
        CAL,
        created_at=paris(6, 23, 30),  # Friday 23:30 in Paris
        resolved_at=None,
    )
    assert (alone.ticket.first_needing_at, alone.ticket.ack_deadline_at) == (None, None)
    assert alone.ticket.first_customer_at == paris(7, 10)
    assert alone.ticket.period_date == date(2026, 3, 6)


def test_one_reply_answers_every_message_waiting_before_it() -> None:
    t = compute(
        [customer(1, paris(9, 10)), customer(2, paris(9, 10, 30)), agent(3, paris(9, 11))],
        CAL,
        created_at=paris(9, 10),
        resolved_at=None,
    )
    # 10:00 -> 11:00 = 3,600 s and 10:30 -> 11:00 = 1,800 s, both inside opening hours.
    assert (t.messages[1].answered_by, t.messages[1].reply_business_s) == (3, 3600)
    assert (t.messages[2].answered_by, t.messages[2].reply_business_s) == (3, 1800)
    assert t.messages[2].reply_calendar_s == 1800
    # The first reply of the ticket is that of its first message.
    assert (t.ticket.first_reply_at, t.ticket.first_reply_business_s) == (paris(9, 11), 3600)


def test_an_internal_note_is_no_reply() -> None:
    t = compute(
        [
            customer(1, paris(9, 10)),
            agent(2, paris(9, 10, 15), public=False),  # a note between agents
            agent(3, paris(9, 12)),
        ],
        CAL,
        created_at=paris(9, 10),
        resolved_at=None,
    )
    # Answered by the public reply at 12:00 (2 h = 7,200 s), not the note at 10:15.
    assert (t.messages[1].answered_by, t.messages[1].reply_business_s) == (3, 7200)
    assert (t.ticket.replies, t.ticket.exchanges) == (1, 2)


def test_a_bot_or_an_automatic_answer_is_no_reply() -> None:
    messages = [
        customer(1, paris(9, 10)),
        agent(2, paris(9, 10, 1), author="bot"),
        agent(3, paris(9, 10, 2), automatic=True),  # an agent's auto-responder
    ]
    t = compute(messages, CAL, created_at=paris(9, 10), resolved_at=None)
    assert t.messages[1].answered_by is None
    assert (t.ticket.first_reply_at, t.ticket.replies, t.ticket.exchanges) == (None, 0, 1)
    # Still waiting, 24 business hours from Monday 10:00: Mon 10:00-18:00 (8 h) + Tue 9 h
    # (17 h) + Wed 7 h from 09:00 -> Wednesday 11 March 16:00.
    assert t.ticket.ack_deadline_at == paris(11, 16)


def test_a_reply_at_the_same_second_answers_the_message() -> None:
    at = paris(9, 10)
    t = compute([agent(2, at), customer(1, at)], CAL, created_at=at, resolved_at=None)
    assert (t.messages[1].answered_by, t.messages[1].reply_business_s) == (2, 0)


def test_a_message_recorded_late_is_answered_by_the_reply_after_it() -> None:
    # The reply came first in the API; the customer message it answers was backfilled.
    first = compute([agent(5, paris(9, 11))], CAL, created_at=paris(9, 9), resolved_at=None)
    assert first.ticket.first_needing_at is None
    later = compute(
        [agent(5, paris(9, 11)), customer(6, paris(9, 9, 30))],
        CAL,
        created_at=paris(9, 9),
        resolved_at=None,
    )
    assert (later.messages[6].answered_by, later.messages[6].reply_business_s) == (5, 5400)


def test_waiting_over_a_night_counts_only_opening_hours() -> None:
    # Monday 17:30 -> Tuesday 09:30: 30 min + 30 min = 3,600 business seconds, 16 h of clock.
    t = compute(
        [customer(1, paris(9, 17, 30)), agent(2, paris(10, 9, 30))],
        CAL,
        created_at=paris(9, 17, 30),
        resolved_at=None,
    )
    assert (t.messages[1].reply_business_s, t.messages[1].reply_calendar_s) == (3600, 57_600)


def test_message_and_ticket_dates_are_the_shop_s_local_dates() -> None:
    late = datetime(2026, 3, 6, 23, 30, tzinfo=UTC)  # Saturday 00:30 in Paris
    t = compute([customer(1, late)], CAL, created_at=late - timedelta(days=3), resolved_at=None)
    assert t.messages[1].period_date == date(2026, 3, 7)
    assert t.ticket.period_date == date(2026, 3, 7)  # its first message needing a reply


def test_resolution_runs_from_the_first_customer_message() -> None:
    created, asked = paris(9, 8), paris(9, 10)
    t = compute([customer(1, asked)], CAL, created_at=created, resolved_at=paris(10, 10))
    assert t.ticket.resolution_s == 24 * 3600  # calendar seconds, not business ones
    none = compute([], CAL, created_at=created, resolved_at=paris(9, 9))
    assert none.ticket.resolution_s == 3600  # from the creation when no customer wrote


def test_status_history_gives_first_resolution_and_reopens_whatever_the_order() -> None:
    changes = [
        StatusFacts(1, "open", paris(9, 9)),
        StatusFacts(4, "closed", paris(12, 9)),  # recorded after the reopen, happened last
        StatusFacts(2, "resolved", paris(10, 9)),
        StatusFacts(3, "open", paris(11, 9)),  # a reopen
    ]
    derived = status_timing(changes)
    assert (derived.status, derived.resolved_at, derived.reopens) == ("closed", paris(10, 9), 1)
    # resolved -> closed is no reopen; closed -> pending is one.
    more = status_timing([*changes, StatusFacts(5, "pending", paris(13, 9))])
    assert (more.status, more.reopens) == ("pending", 2)
    assert status_at(changes, paris(10, 12)) == "resolved"
    assert status_at(changes, paris(9, 8)) is None
    # A ticket closed without ever being `resolved` is resolved when it closed.
    assert status_timing([StatusFacts(1, "closed", paris(9, 9))]).resolved_at == paris(9, 9)


def test_acknowledgement_within_24_business_hours() -> None:
    asked, deadline = paris(9, 10), paris(11, 16)
    assert acknowledged(None, None, None, asked) is None
    assert acknowledged(asked, paris(11, 15), deadline, paris(20, 9)) == Acknowledged.YES
    assert acknowledged(asked, paris(11, 17), deadline, paris(20, 9)) == Acknowledged.NO
    assert acknowledged(asked, None, deadline, paris(11, 15)) == Acknowledged.PENDING
    assert acknowledged(asked, None, deadline, paris(11, 17)) == Acknowledged.NO
    # A calendar that never opens has no deadline: never late.
    assert acknowledged(asked, None, None, paris(30, 9)) == Acknowledged.PENDING
