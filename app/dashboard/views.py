"""What every dashboard page shares: the page frame, query parameters read without surprises."""

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse, RedirectResponse

from app.dashboard.auth import Merchant
from app.dashboard.rendering import render, when
from app.validation import INT64_MAX


def shop_page(
    merchant: Merchant, template: str, nav: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """A page of the signed-in shop: its name, the navigation, the sign-out form's token."""
    timezone = _timezone(merchant)
    return render(
        template,
        merchant.language,
        {
            "signed_in": True,
            "nav": nav,
            "shop_name": merchant.shop.name,
            "shop_id": merchant.shop.id,
            "csrf": merchant.csrf,
            "when": lambda moment: when(moment, timezone, merchant.language),
            **context,
        },
        status_code,
    )


def _timezone(merchant: Merchant) -> str:
    try:
        return merchant.shop.settings.timezone
    except ValueError:
        return merchant.shop.timezone


def timezone_of(merchant: Merchant) -> str:
    return _timezone(merchant)


def choice(value: str | None, allowed: set[str] | frozenset[str]) -> str | None:
    """A filter's value when it is one of `allowed`; anything else reads as no filter."""
    return value if value in allowed else None


def int_param(value: str | None, low: int = 1, high: int = INT64_MAX) -> int | None:
    if value is None or not value.strip().isdigit() or len(value.strip()) > 19:
        return None
    number = int(value.strip())
    return number if low <= number <= high else None


def cursor_param(value: str | None) -> str | None:
    return value if value and len(value) <= 100 else None


def filtered(path: str, filters: dict[str, Any]) -> str:
    """`path` with the filters that are set."""
    kept = {k: v for k, v in filters.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def next_link(path: str, filters: dict[str, Any], cursor: str | None) -> str | None:
    """The next page's link, keeping the filters."""
    if cursor is None:
        return None
    return filtered(path, {**filters, "cursor": cursor})


def pager(
    path: str, filters: dict[str, Any], on_first_page: bool, next_cursor: str | None
) -> dict[str, str | None]:
    """A list's links to its next page and back to its first, both keeping the filters
    (`_filters.html: pager`)."""
    return {
        "next_url": next_link(path, filters, next_cursor),
        "first_url": None if on_first_page else filtered(path, filters),
    }


def back_to(path: str, **params: str) -> RedirectResponse:
    """After a form: see the page again (POST, redirect, GET), with what happened."""
    query = urlencode(params)
    return RedirectResponse(f"{path}?{query}" if query else path, status_code=303)


def notice(done: str | None, problem: str | None) -> dict[str, str | None]:
    """The message a redirected page shows: `done_<x>` or `problem_<x>` texts."""
    ok = done if done and done.isidentifier() and len(done) < 40 else None
    bad = problem if problem and problem.isidentifier() and len(problem) < 40 else None
    return {"done": ok, "problem": bad}


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
