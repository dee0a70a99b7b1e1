"""API schemas of merchant templates, their preview and the test e-mail."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue

from app.emailtemplates.rendering import LIMITS, Language, TemplateKind
from app.validation import EmailAddress, PositiveId, no_nul

_EXAMPLE: JsonValue = {
    "subject": "{{ shop_name }}: how was your order {{ order_reference }}?",
    "html": '<p>Hello {{ firstname or "there" }},</p>\n'
    '<p><a href="{{ review_url }}">Leave a review</a></p>\n'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
    "text": 'Hello {{ firstname or "there" }},\n\nLeave a review: {{ review_url }}\n\n'
    "Unsubscribe: {{ unsubscribe_url }}\n",
}


def _bytes_at_most(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value.encode()) > limit:
            raise ValueError(f"at most {limit} bytes")
        return value

    return AfterValidator(check)


# max_length (characters) refuses the huge ones before they are encoded to count their bytes.
Subject = Annotated[
    str,
    Field(min_length=1, max_length=LIMITS["subject"]),
    AfterValidator(no_nul),
    _bytes_at_most(LIMITS["subject"]),
]
Html = Annotated[
    str,
    Field(min_length=1, max_length=LIMITS["html"]),
    AfterValidator(no_nul),
    _bytes_at_most(LIMITS["html"]),
]
Text = Annotated[
    str,
    Field(min_length=1, max_length=LIMITS["text"]),
    AfterValidator(no_nul),
    _bytes_at_most(LIMITS["text"]),
]


class TemplateUpdate(BaseModel):
    """A template's three parts, in Jinja (docs/templates.md lists the variables)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    subject: Subject
    html: Html
    text: Text


class TemplateRead(BaseModel):
    kind: TemplateKind
    language: Language
    subject: str
    html: str
    text: str
    updated_at: datetime


class PreviewCreate(BaseModel):
    """What to render: the template in use for this kind and language, for a sample order or
    one of the shop's orders."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"kind": "request", "language": "fr"}]},
    )

    kind: TemplateKind
    language: Language
    order_id: PositiveId | None = Field(
        default=None, description="An order of the shop (its PrestaShop id); default: a sample."
    )


class PreviewRead(BaseModel):
    subject: str
    html: str
    text: str
    template: Literal["merchant", "default"] = Field(
        description="Which template rendered it: the shop's saved one, or Relance's own."
    )


class TestEmailCreate(PreviewCreate):
    """Send the preview of a kind and language to an address, now, marked as a test."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"to": "merchant@example.fr", "kind": "request", "language": "fr"}]
        },
    )

    to: EmailAddress


class TestEmailRead(BaseModel):
    status: Literal["sent"]
    message_id: str
    to: str
    template: Literal["merchant", "default"]
