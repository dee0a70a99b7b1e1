"""The API's validation errors in the shop's language: one text per pydantic error `type`, filled
with its `ctx`; our own validators' `value_error`s by a code the form gives per field (the
field names the validator, so no English message is matched). An unknown type keeps the
API's message."""

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from babel.lists import format_list
from babel.numbers import format_decimal

# pydantic's error types that have a text (`error_<type>`), some sharing one.
TYPE_KEYS: dict[str, str] = {
    "missing": "error_missing",
    "int_parsing": "error_int_parsing",
    "int_type": "error_int_parsing",
    "int_from_float": "error_int_parsing",
    "float_parsing": "error_float_parsing",
    "float_type": "error_float_parsing",
    "decimal_parsing": "error_float_parsing",
    "bool_parsing": "error_bool_parsing",
    "bool_type": "error_bool_parsing",
    "string_type": "error_string_type",
    "string_too_short": "error_string_too_short",
    "string_too_long": "error_string_too_long",
    "string_pattern_mismatch": "error_string_pattern_mismatch",
    "too_short": "error_too_short",
    "too_long": "error_too_long",
    "greater_than": "error_greater_than",
    "greater_than_equal": "error_greater_than_equal",
    "less_than": "error_less_than",
    "less_than_equal": "error_less_than_equal",
    "literal_error": "error_literal_error",
    "enum": "error_literal_error",
    "time_parsing": "error_time_parsing",
    "time_type": "error_time_parsing",
    "date_parsing": "error_date_parsing",
    "date_from_datetime_parsing": "error_date_parsing",
    "date_type": "error_date_parsing",
    "list_type": "error_list_type",
    "tuple_type": "error_list_type",
    "dict_type": "error_dict_type",
    "model_type": "error_dict_type",
    "model_attributes_type": "error_dict_type",
    "extra_forbidden": "error_extra_forbidden",
}
# Types our own validators raise, said by the code of the field's validator when it has one.
OWN_TYPES = frozenset({"value_error", "assertion_error", "string_pattern_mismatch"})
_QUOTED = re.compile(r"'([^']*)'")


def _number(value: Any, language: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return str(value)
    return format_decimal(value, locale=language)


def _choices(expected: Any, language: str) -> str:
    """pydantic's `'a' or 'b'` as a list in the language: « a ou b »."""
    values = _QUOTED.findall(str(expected))
    return format_list(values, style="or", locale=language) if values else str(expected)


def _ctx(error: Mapping[str, Any], extra: Mapping[str, Any], language: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in {**(error.get("ctx") or {}), **extra}.items():
        if name == "expected":
            values[name] = _choices(value, language)
        elif name != "error":  # the exception itself: its words are English
            values[name] = _number(value, language)
    return values


def error_text(
    error: Mapping[str, Any],
    t: Mapping[str, str],
    language: str,
    code: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """One error as the merchant reads it. `code` names the field's own validator (its text
    is `value_<code>`); `extra` fills that text's blanks."""
    kind = str(error.get("type", ""))
    key = f"value_{code}" if code and (kind in OWN_TYPES or not kind) else TYPE_KEYS.get(kind)
    original = str(error.get("msg", ""))
    if key is None or key not in t:
        return original
    try:
        return t[key].format_map(_ctx(error, extra or {}, language))
    except (KeyError, IndexError, ValueError):  # a blank the ctx does not fill
        return original
