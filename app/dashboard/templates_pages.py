"""The shop's own e-mail templates: which kind and language has one (and what the others fall
back to), an editor saving through the API's schema and service, and reset to the default."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from app.dashboard.auth import Merchant, MerchantDep, PageRoute, ReadMerchantDep, checked_form
from app.dashboard.error_texts import error_text
from app.dashboard.rendering import texts
from app.dashboard.views import back_to, notice, shop_page
from app.db import utcnow
from app.deps import ConnDep, ReadConnDep, SettingsDep
from app.emailtemplates import rendering, service
from app.emailtemplates.rendering import FIELDS, LIMITS, MerchantTemplate, TemplateKind
from app.emailtemplates.schemas import TemplateUpdate
from app.errors import InvalidInput, NotFound
from app.languages import LANGUAGES
from app.mail.templates import TEMPLATES_DIR

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PATH = "/dashboard/settings/templates"
KINDS = [k.value for k in TemplateKind]
LANGUAGE_CHOICES = sorted(LANGUAGES)
FORM = "_form"
# The HTML part a new template starts from: the two links every template must show.
_STARTER_HTML = (
    '<p>{{{{ shop_name }}}}</p>\n<p><a href="{{{{ review_url }}}}">{cta}</a></p>\n'
    '<p><a href="{{{{ unsubscribe_url }}}}">{unsubscribe}</a></p>\n'
)


def _chosen(kind: str, language: str) -> tuple[TemplateKind, str]:
    """The kind and language a path names; anything else is a page not found."""
    if kind not in KINDS or language not in LANGUAGES:
        raise NotFound(f"No template {kind}/{language}.")
    return TemplateKind(kind), language


def _uses(saved: dict[str, Any], kind: str) -> str:
    """What an e-mail of this kind is written with: `own`, `reminder` (the shop's template for
    every reminder) or `default` (Relance's own) — `rendering.pick`'s rule."""
    if kind in saved:
        return "own"
    if kind.startswith("reminder_") and TemplateKind.REMINDER in saved:
        return "reminder"
    return "default"


@router.get(PATH)
async def list_templates(
    merchant: ReadMerchantDep,
    conn: ReadConnDep,
    done: str | None = None,
    problem: str | None = None,
) -> HTMLResponse:
    found = await service.saved_for(conn, [(merchant.shop.id, lang) for lang in LANGUAGE_CHOICES])
    languages = []
    # The shop's own language first.
    for language in sorted(LANGUAGE_CHOICES, key=lambda lang: lang != merchant.language):
        saved = found.get((merchant.shop.id, language), {})
        kinds = [{"kind": k, "uses": _uses(saved, k)} for k in KINDS]
        languages.append({"language": language, "kinds": kinds, "own": len(saved)})
    context = {"languages": languages, **notice(done, problem)}
    return shop_page(merchant, "email_templates.html", "settings", context)


def _starter(language: str) -> dict[str, str]:
    """A new template's fields: Relance's own subject and text for the language (they pass the
    sandbox's checks), and a short HTML part with both links."""
    t = texts(language)
    base = TEMPLATES_DIR / "emails" / language
    return {
        "subject": (base / "review_request.subject.txt").read_text("utf-8").strip(),
        "text": (base / "review_request.txt").read_text("utf-8"),
        "html": _STARTER_HTML.format(
            cta=t["template_starter_cta"], unsubscribe=t["template_starter_unsubscribe"]
        ),
    }


def _editor(
    merchant: Merchant,
    kind: TemplateKind,
    language: str,
    values: dict[str, str],
    saved: dict[str, Any] | None,
    errors: dict[str, list[dict[str, str | None]]],
    status_code: int = 200,
    done: str | None = None,
    general: bool = False,
) -> HTMLResponse:
    t = texts(merchant.language)
    heading = t["template_title"].format(
        kind=t[f"kind_{kind.value}"], language=t[f"language_{language}"]
    )
    context = {
        "heading": heading,
        "kind": kind.value,
        "language": language,
        "v": values,
        "saved": saved,
        "from_general": general,
        "errors": errors,
        "limits": LIMITS,
        "variables": sorted(rendering.VARIABLES),
        "action": f"{PATH}/{kind.value}/{language}",
        **notice(done, None),
    }
    return shop_page(merchant, "email_template.html", "settings", context, status_code)


@router.get(PATH + "/{kind}/{language}")
async def edit_template(
    kind: str,
    language: str,
    merchant: ReadMerchantDep,
    conn: ReadConnDep,
    done: str | None = None,
) -> HTMLResponse:
    chosen, language = _chosen(kind, language)
    saved = await service.get(conn, merchant.shop.id, chosen, language)
    general = None
    if saved is None and chosen.is_reminder and chosen is not TemplateKind.REMINDER:
        # The template this reminder uses now, when the shop has one for every reminder.
        general = await service.get(conn, merchant.shop.id, TemplateKind.REMINDER, language)
    start = saved or general
    values = {f: start[f] for f in FIELDS} if start else _starter(language)
    return _editor(merchant, chosen, language, values, saved, {}, done=done, general=bool(general))


def _said(line: int | None, detail: str, t: dict[str, str]) -> dict[str, str | None]:
    """A refusal as the editor shows it: the shop's words, and the sandbox's own (code)."""
    said = t["template_refused_line"].format(line=line) if line else t["template_refused"]
    return {"said": said, "detail": detail}


def _schema_errors(
    exc: ValidationError, posted: dict[str, str], language: str
) -> dict[str, list[dict[str, str | None]]]:
    t = texts(language)
    found: dict[str, list[dict[str, str | None]]] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else FORM
        value = posted.get(field, "")
        # The two validators of a part: no NUL character, and its size in bytes.
        code = "no_nul" if "\x00" in value else "template_bytes"
        limit = LIMITS.get(field, 0)
        message = error_text(dict(error), t, language, code, {"limit": limit})
        found.setdefault(field, []).append({"said": message, "detail": None})
    return found


def _sandbox_errors(
    template: MerchantTemplate, kind: TemplateKind, language: str, exc: InvalidInput
) -> dict[str, list[dict[str, str | None]]]:
    """The sandbox's refusals under the field each names, with its line."""
    t = texts(language)
    found: dict[str, list[dict[str, str | None]]] = {}
    problems = rendering.check(template, kind)
    for p in problems:
        found.setdefault(p.field, []).append(_said(p.line, p.msg, t))
    if not found:  # refused for a reason the check no longer gives: the API's words
        found[FORM] = [_said(None, exc.detail, t)]
    return found


@router.post(PATH + "/{kind}/{language}")
async def save_template(
    kind: str,
    language: str,
    merchant: MerchantDep,
    conn: ConnDep,
    settings: SettingsDep,
    request: Request,
) -> Response:
    chosen, language = _chosen(kind, language)
    form = await checked_form(request, merchant, settings)
    # A textarea posts CRLF line ends; the e-mails are written with LF.
    posted = {f: form.value(f).replace("\r\n", "\n") for f in FIELDS}
    posted["subject"] = posted["subject"].strip()
    errors: dict[str, list[dict[str, str | None]]] = {}
    try:  # an empty part is left out: "required", not "at least 1 character"
        body = TemplateUpdate.model_validate({f: v for f, v in posted.items() if v})
    except ValidationError as exc:
        errors = _schema_errors(exc, posted, merchant.language)
    else:
        template = MerchantTemplate(subject=body.subject, html=body.html, text=body.text)
        try:
            await service.save(conn, merchant.shop.id, chosen, language, template, utcnow())
        except InvalidInput as exc:
            errors = _sandbox_errors(template, chosen, merchant.language, exc)
    if errors:
        saved = await service.get(conn, merchant.shop.id, chosen, language)
        return _editor(merchant, chosen, language, posted, saved, errors, 422)
    return back_to(f"{PATH}/{chosen.value}/{language}", done="template_saved")


@router.post(PATH + "/{kind}/{language}/delete")
async def delete_template(
    kind: str,
    language: str,
    merchant: MerchantDep,
    conn: ConnDep,
    settings: SettingsDep,
    request: Request,
) -> Response:
    """Back to the default: what `DELETE …/templates/{kind}/{language}` does."""
    chosen, language = _chosen(kind, language)
    await checked_form(request, merchant, settings)
    if not await service.remove(conn, merchant.shop.id, chosen, language):
        return back_to(PATH, problem="template_not_found")
    return back_to(PATH, done="template_reset")
