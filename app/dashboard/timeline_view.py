"""A request's timeline in the shop's language: each step the API writes (`step`, `detail`,
app/requests/timeline.py and the sources it collects) read back into a step kind, an e-mail,
times, a reason code, and said with the dashboard's texts. The API's own words stay
reachable (a step's code is shown small, its detail as the item's title): merchants quote
them to support. A detail in a shape not known here is shown as the API wrote it."""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.requests.schemas import TimelineStep

# The step names the API writes, each with the key of its label.
STEP_KEYS: dict[str, str] = {
    "created": "step_created",
    "scheduled": "step_scheduled",
    "moved into the send window": "step_window",
    "claimed": "step_claimed",
    "sent": "step_sent",
    "clicked": "step_clicked",
    "skipped": "step_skipped",
    "cancelled": "step_cancelled",
    "failed": "step_failed",
    "moved": "step_moved",
    "re-queued": "step_requeued",
    "rescheduled": "step_rescheduled",
    "reviewed": "step_reviewed",
    "review changed": "step_review_changed",
}
EVENT_PREFIX = "event "

_ISO = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.+\-]+"
_EMAIL = r"(?P<email>first e-mail|reminder (?P<seq>[0-9]+))"
_REASON = r"(?P<reason>[a-z0-9_]*)(?:: (?P<error>.*))?"
_SETTINGS_MOVED = rf"{_EMAIL}: the shop's settings changed, due (?P<old>{_ISO}) → (?P<at>{_ISO})"

# (pattern of the detail, key of its text) per step; the first that matches says it.
_DETAILS: dict[str, list[tuple[re.Pattern[str], str]]] = {
    "created": [(re.compile(rf"(?P<source>trigger|fallback) at (?P<at>{_ISO})"), "detail_created")],
    "scheduled": [(re.compile(rf"{_EMAIL} due (?P<at>{_ISO})"), "detail_due")],
    "moved into the send window": [
        (
            re.compile(rf"{_EMAIL}: the delay ended (?P<from>{_ISO}), due (?P<at>{_ISO})"),
            "detail_window",
        ),
    ],
    "claimed": [
        (re.compile(rf"{_EMAIL}, attempt (?P<n>[0-9]+)"), "detail_attempt"),
        (re.compile(_EMAIL), "detail_email"),
    ],
    "sent": [
        (re.compile(rf"{_EMAIL} \(dry run\), Message-ID (?P<mid>.*)", re.S), "detail_sent_dry"),
        (re.compile(rf"{_EMAIL}, Message-ID (?P<mid>.*)", re.S), "detail_sent"),
    ],
    "clicked": [(re.compile(_EMAIL), "detail_email")],
    "cancelled": [
        (re.compile(rf"{_EMAIL}: no longer in the settings"), "detail_dropped"),
        (re.compile(rf"{_EMAIL}, {_REASON}", re.S), "detail_outcome"),
    ],
    "moved": [
        (re.compile("sent now by hand"), "detail_sent_now"),
        (re.compile(rf"rescheduled by hand to (?P<at>{_ISO})"), "detail_moved_to"),
    ],
    "re-queued": [
        (
            re.compile(rf"by hand, with fresh attempts \(it had failed, {_REASON}\)", re.S),
            "detail_requeued",
        ),
    ],
    "rescheduled": [
        (re.compile(_SETTINGS_MOVED), "detail_settings_moved"),
    ],
    "reviewed": [(re.compile("(?P<rating>[0-9]+) stars"), "detail_rating")],
    "event": [
        (
            re.compile("webhook (?P<webhook>.*), order history (?P<history>[0-9]+|None)", re.S),
            "detail_event",
        ),
    ],
}
_DETAILS["skipped"] = _DETAILS["failed"] = _DETAILS["cancelled"][1:]
_DETAILS["review changed"] = _DETAILS["reviewed"]
_TIMES = ("at", "from", "old")


@dataclass(frozen=True)
class ShownStep:
    """A step as the merchant reads it, with the API's code and words kept beside it."""

    at: datetime
    label: str
    detail: str
    code: str  # the API's `step`
    raw: str  # the API's `detail`
    reason: str | None  # a reason code named in the detail
    known: bool  # False: the detail is shown as the API wrote it


def _format(text: str, values: Mapping[str, str]) -> str:
    return text.format_map(values)


def _label(step: str, t: Mapping[str, str]) -> tuple[str, str | None]:
    """The step's label and, for a webhook event, its outcome."""
    if step.startswith(EVENT_PREFIX):
        outcome = step.removeprefix(EVENT_PREFIX)
        said = t.get(f"event_outcome_{outcome}", outcome)
        return _format(t["step_event"], {"outcome": said}), outcome
    key = STEP_KEYS.get(step)
    return (t[key] if key else step), None


def _values(
    found: Mapping[str, Any], t: Mapping[str, str], when: Callable[[datetime], str]
) -> dict[str, str]:
    values = {k: v for k, v in found.items() if isinstance(v, str)}
    if found.get("email"):
        seq = found.get("seq")
        values["email"] = (
            t["email_first"] if seq is None else _format(t["email_reminder"], {"n": seq})
        )
    for name in _TIMES:
        if found.get(name):
            values[name] = when(datetime.fromisoformat(found[name]))
    if "source" in values:
        values["source"] = t[f"source_{values['source']}"]
    reason = found.get("reason")
    if reason is not None:
        values["reason"] = t.get(f"reason_{reason}", reason) if reason else t["reason_none"]
        values["error"] = f" ({found['error']})" if found.get("error") else ""
    return values


def shown(step: TimelineStep, t: Mapping[str, str], when: Callable[[datetime], str]) -> ShownStep:
    """One step of the API's timeline in the language of `t`."""
    label, outcome = _label(step.step, t)
    family = "event" if outcome is not None else step.step
    for pattern, key in _DETAILS.get(family, []):
        found = pattern.fullmatch(step.detail)
        if found is None:
            continue
        groups = found.groupdict()
        text = _format(t[key], _values(groups, t, when))
        return ShownStep(step.at, label, text, step.step, step.detail, groups.get("reason"), True)
    return ShownStep(step.at, label, step.detail, step.step, step.detail, None, False)


def shown_timeline(
    steps: list[TimelineStep], t: Mapping[str, str], when: Callable[[datetime], str]
) -> list[ShownStep]:
    return [shown(step, t, when) for step in steps]
