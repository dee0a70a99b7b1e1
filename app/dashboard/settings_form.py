"""The settings form: the shop's settings as field values, a posted form as the API's PATCH
body, and the API's validation errors keyed by the form field they belong to."""

from collections.abc import Iterable, Mapping
from typing import Any

import holidays

from app.dashboard.auth import Form
from app.dashboard.error_texts import error_text
from app.dashboard.rendering import texts
from app.shops.settings import ShopSettings
from app.timeutil import MAX_DAYS

# Text fields holding one ISO 8601 duration; empty means null where the setting takes one.
DURATIONS = ("delay", "customer_cooldown", "max_age", "fallback_delay")
NULLABLE = frozenset({"customer_cooldown", "max_age", "fallback_delay"})
WEEKDAYS = ("1", "2", "3", "4", "5", "6", "7")
FORM = "_form"  # errors of the whole settings, shown at the top
STATE_FIELDS = ("trigger_state_ids", "cancel_state_ids")
# The validator behind each field's `value_error` (app/shops/settings.py, app/validation.py):
# its code names the text that says it (`value_<code>`).
VALUE_CODES: dict[str, str] = {
    **{name: "duration" for name in (*DURATIONS, "reminders")},
    "timezone": "timezone",
    "default_language": "language",
    "send_window_start": "local_time",
    "send_window_end": "local_time",
    "send_window_holidays": "holidays_country",
    "exclusions_min_order_total": "amount",
    "exclusions_blocked_emails": "address_pattern",
    FORM: "states_overlap",
}


def _csv(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


def _items(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def values_of(settings: ShopSettings) -> dict[str, Any]:
    """The form's fields filled from the stored settings."""
    window = settings.send_window
    ex = settings.exclusions
    return {
        "trigger_state_ids": [str(i) for i in settings.trigger_state_ids],
        "cancel_state_ids": [str(i) for i in settings.cancel_state_ids],
        "trigger_state_ids_text": _csv(settings.trigger_state_ids),
        "cancel_state_ids_text": _csv(settings.cancel_state_ids),
        **{name: getattr(settings, name) or "" for name in DURATIONS},
        "require_paid": settings.require_paid,
        "reminders": _csv(settings.reminders),
        "send_window_on": window is not None,
        "send_window_weekdays": [str(d) for d in (window.weekdays if window else [1, 2, 3, 4, 5])],
        "send_window_start": window.start.strftime("%H:%M") if window else "09:00",
        "send_window_end": window.end.strftime("%H:%M") if window else "19:00",
        "send_window_holidays": (window.holidays or "") if window else "",
        "exclusions_blocked_emails": "\n".join(ex.blocked_emails),
        "exclusions_excluded_product_ids": _csv(ex.excluded_product_ids),
        "exclusions_excluded_group_ids": _csv(ex.excluded_group_ids),
        "exclusions_min_order_total": ex.min_order_total or "",
        "exclusions_newsletter_only": ex.newsletter_only,
        "default_language": settings.default_language,
        "timezone": settings.timezone,
        "review_default_status": settings.review_default_status,
        "review_product_ratings": settings.review_product_ratings,
        "review_nps": settings.review_nps,
    }


def values_posted(form: Form) -> dict[str, Any]:
    """The form's fields as posted, to show again next to their errors."""
    checkboxes = (
        "require_paid", "send_window_on", "exclusions_newsletter_only", "review_product_ratings",
        "review_nps",
    )  # fmt: skip
    lists = ("trigger_state_ids", "cancel_state_ids", "send_window_weekdays")
    values: dict[str, Any] = {name: form.value(name) for name in form if name != "csrf"}
    values.update({name: name in form for name in checkboxes})
    values.update({name: form.values(name) for name in lists})
    return values


def changes_of(form: Form, has_catalogue: bool) -> dict[str, Any]:
    """The PATCH body the form stands for (every field it shows), as JSON values: the API's
    own validation then decides, and its errors name these fields."""
    changes: dict[str, Any] = {}
    for name in ("trigger_state_ids", "cancel_state_ids"):
        if has_catalogue:
            changes[name] = form.values(name)
        else:
            changes[name] = _items(form.value(f"{name}_text"))
    for name in DURATIONS:
        text = form.value(name).strip()
        changes[name] = None if (not text and name in NULLABLE) else text
    changes["require_paid"] = "require_paid" in form
    changes["reminders"] = _items(form.value("reminders"))
    if "send_window_on" in form:
        changes["send_window"] = {
            "weekdays": form.values("send_window_weekdays"),
            "start": form.value("send_window_start").strip(),
            "end": form.value("send_window_end").strip(),
            "holidays": form.value("send_window_holidays").strip() or None,
        }
    else:
        changes["send_window"] = None
    changes["exclusions"] = {
        "blocked_emails": [
            line.strip() for line in form.value("exclusions_blocked_emails").splitlines()
            if line.strip()
        ],
        "excluded_product_ids": _items(form.value("exclusions_excluded_product_ids")),
        "excluded_group_ids": _items(form.value("exclusions_excluded_group_ids")),
        "min_order_total": form.value("exclusions_min_order_total").strip() or None,
        "newsletter_only": "exclusions_newsletter_only" in form,
    }  # fmt: skip
    changes["default_language"] = form.value("default_language").strip()
    changes["timezone"] = form.value("timezone").strip()
    changes["review_default_status"] = form.value("review_default_status").strip()
    changes["review_product_ratings"] = "review_product_ratings" in form
    changes["review_nps"] = "review_nps" in form
    return changes


def field_of(loc: Iterable[Any]) -> str:
    """The form field an error's `loc` points at: `["body", "send_window", "start"]` →
    `send_window_start`; a rule across fields → the top of the form."""
    parts = [p for p in loc if p != "body"]
    if not parts:
        return FORM
    head = str(parts[0])
    if head in ("send_window", "exclusions") and len(parts) > 1 and isinstance(parts[1], str):
        return f"{head}_{parts[1]}"
    return head


def _posted_country(changes: Mapping[str, Any]) -> str:
    window = changes.get("send_window") or {}
    return str(window.get("holidays") or "")


def _said(error: Mapping[str, Any], changes: Mapping[str, Any], language: str) -> tuple[str, str]:
    """The field an error belongs to and its text in `language`."""
    field = field_of(error.get("loc", ()))
    code, extra = VALUE_CODES.get(field), {}
    if field == "send_window":
        # One validator, two rules: the posted values say which one refused them.
        country = _posted_country(changes)
        if country and country.upper() not in holidays.list_supported_countries():
            field, code = "send_window_holidays", "holidays_country"
        else:
            code = "window_order"
    elif field in STATE_FIELDS and not error.get("type"):
        # The service's catalogue check: `loc` ends with the index of the state refused.
        loc = list(error.get("loc", ()))
        chosen = changes.get(field) or []
        index = loc[-1] if loc and isinstance(loc[-1], int) else -1
        code = "state_unknown"
        extra = {"state": chosen[index] if 0 <= index < len(chosen) else "?"}
    elif code == "duration":
        extra = {"max_days": MAX_DAYS}
    elif code == "states_overlap":
        both = {str(s) for s in changes.get("trigger_state_ids") or []} & {
            str(s) for s in changes.get("cancel_state_ids") or []
        }
        extra = {"states": ", ".join(sorted(both, key=lambda s: (len(s), s)))}
        code = code if both else None  # another rule across fields: the API's words
    return field, error_text(error, texts(language), language, code, extra)


def errors_by_field(
    errors: Iterable[Mapping[str, Any]], changes: Mapping[str, Any], language: str
) -> dict[str, list[str]]:
    """pydantic's (or the service's) errors, each in `language` under the field it names;
    `changes` is the PATCH body that was refused."""
    found: dict[str, list[str]] = {}
    for error in errors:
        field, message = _said(error, changes, language)
        if message not in found.get(field, []):
            found.setdefault(field, []).append(message)
    return found
