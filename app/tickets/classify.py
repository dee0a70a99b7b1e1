"""Closing thanks and ticket level, read from a message's own words in fr, en, it, es, de: pure.

Both are readable rules (`classify_rules.py`, shown to merchants as `RULES`), not a model: a
merchant who disagrees can see which rule matched (`Verdict.rule`) and override per message.
"""

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.languages import LANGUAGES
from app.tickets.classify_rules import (
    CLOSING,
    CLOSING_EMOJI,
    DEFAULT_LEVEL,
    LEVEL_RULES,
    QUOTE_HEADERS,
    SIGN_OFFS,
)

# What is read of a body: a closing thanks is short, and a level phrase sits near the top.
MAX_BODY_CHARS = 20_000
# Past this, a message is never a closing thanks, whatever its words.
MAX_CLOSING_WORDS = 25
MAX_CLOSING_CHARS = 300
_LANGUAGE_ORDER = ("fr", "en", "it", "es", "de")


@dataclass(frozen=True)
class Verdict:
    needs_reply: bool
    rule: str | None  # e.g. "closing_thanks.fr", "question", "too_long"


def normalise(text: str) -> str:
    """Lower case (casefold: "ß" → "ss"), accents removed, typographic apostrophes plain."""
    folded = unicodedata.normalize("NFKD", text.casefold().replace("\u2019", "'"))
    return "".join(c for c in folded if not unicodedata.combining(c))


_WORD = re.compile(r"[^\W_]+")
_QUOTE_HEADER = re.compile("|".join(f"(?:{h})" for h in QUOTE_HEADERS))
_SIGN_OFF = re.compile(
    r"(?:^|(?<=[\n.!,;:])|(?<=[\n.!,;:] ))\s*(?:"
    + "|".join(
        sorted(
            {re.escape(normalise(s)) for phrases in SIGN_OFFS.values() for s in phrases},
            key=len,
            reverse=True,
        )
    )
    + r")(?!\w)"
)
# A last line of one to three capitalised words ("Marie", "Jean-Marc D.") is a signature.
_NAME_LINE = re.compile(r"^[A-ZÀ-Ý][\w'.-]*(?: [A-ZÀ-Ý][\w'.-]*){0,2}$")


@dataclass(frozen=True)
class _Vocabulary:
    closing: frozenset[str]
    words: frozenset[str]  # closing and allowed


_VOCABULARY = {
    lang: _Vocabulary(
        frozenset(normalise(w) for w in lists["closing"]),
        frozenset(normalise(w) for w in (*lists["closing"], *lists["allowed"])),
    )
    for lang, lists in CLOSING.items()
}
_ALL_WORDS = frozenset().union(*(v.words for v in _VOCABULARY.values()))
_CLOSING_EMOJI = frozenset(CLOSING_EMOJI)


def _languages(language: str | None) -> Iterator[str]:
    """The message's language first (when known), then the others: tags are often wrong."""
    first = (language or "")[:2].lower()
    if first in LANGUAGES:
        yield first
    yield from (lang for lang in _LANGUAGE_ORDER if lang != first)


def own_words(body: str) -> str:
    """The customer's own text, normalised: quoted previous mail, sign-off and name cut."""
    raw_lines = body[:MAX_BODY_CHARS].splitlines()
    kept: list[tuple[str, str]] = []
    for raw in raw_lines:
        line = normalise(raw).strip()
        if line.startswith(">") or line == "--" or _QUOTE_HEADER.match(line):
            break
        if line:
            kept.append((raw.strip(), line))
    while len(kept) > 1 and _NAME_LINE.match(kept[-1][0]):
        if any(w in _ALL_WORDS for w in _WORD.findall(kept[-1][1])):
            break
        kept.pop()
    text = "\n".join(line for _, line in kept)
    if match := _SIGN_OFF.search(text):
        text = text[: match.start()]
    return text.strip()


def _symbols(text: str) -> set[str]:
    """Emoji and other pictographs (Unicode "So"), variation selectors left out."""
    return {c for c in text if unicodedata.category(c) == "So"}


def needs_reply(body: str | None, language: str | None) -> Verdict:
    """False only for a short message that merely thanks or closes; True when in doubt."""
    if body is None or not body.strip():
        return Verdict(True, "empty")  # nothing to read: counted, never silently dropped
    text = own_words(body)
    if "?" in text or "\u00bf" in text:
        return Verdict(True, "question")
    words = _WORD.findall(text)
    if len(words) > MAX_CLOSING_WORDS or len(text) > MAX_CLOSING_CHARS:
        return Verdict(True, "too_long")
    symbols = _symbols(text)
    if symbols - _CLOSING_EMOJI:
        return Verdict(True, "other")  # 😡, 👎, … : not a happy ending
    if not words:
        return Verdict(False, "closing_emoji") if symbols else Verdict(True, "empty")
    for lang in _languages(language):
        vocabulary = _VOCABULARY[lang]
        if all(w in vocabulary.words for w in words) and any(
            w in vocabulary.closing for w in words
        ):
            return Verdict(False, f"closing_thanks.{lang}")
    return Verdict(True, "other")


def _word_pattern(word: str) -> str:
    if word.endswith("*"):
        return rf"\b{re.escape(word[:-1])}\w*"
    return rf"\b{re.escape(word)}\b"


def _phrase_pattern(phrase: str) -> str:
    # Up to two other words between the phrase's words: "où est donc ma commande".
    words = re.findall(r"[\w*]+", normalise(phrase))
    return r"\W+(?:\w+\W+){0,2}?".join(_word_pattern(w) for w in words)


_LEVEL_PATTERNS: tuple[tuple[str, int, dict[str, re.Pattern[str]]], ...] = tuple(
    (
        rule_id,
        rule_level,
        {
            lang: re.compile("|".join(f"(?:{_phrase_pattern(p)})" for p in phrases))
            for lang, phrases in by_language.items()
        },
    )
    for rule_id, rule_level, by_language in LEVEL_RULES
)


def level(body: str | None, subject: str | None, language: str | None) -> tuple[int, str]:
    """1 (routine) or 2 (complex), and the rule id ("legal.fr", "refund.en", or "default").

    Level 2 rules come first: one sign of a third party, a dispute or repeated contacts makes a
    ticket complex even when it also asks where the order is.
    """
    text = normalise(subject or "")[:MAX_BODY_CHARS] + "\n" + own_words(body or "")
    for rule_id, rule_level, patterns in _LEVEL_PATTERNS:
        for lang in _languages(language):
            if patterns[lang].search(text):
                return rule_level, f"{rule_id}.{lang}"
    return DEFAULT_LEVEL, "default"


def _rules() -> dict[str, Any]:
    return {
        "needs_reply": {
            "description": (
                "A customer message needs no reply only when, once quoted mail, sign-off and "
                "name are cut, it is short, asks nothing (no question mark) and is made only "
                "of one language's closing words (at least one) and allowed words. Anything "
                "else needs a reply."
            ),
            "max_words": MAX_CLOSING_WORDS,
            "max_chars": MAX_CLOSING_CHARS,
            "outcomes": {
                "closing_thanks.<language>": "no reply needed: only thanks or closing words",
                "closing_emoji": "no reply needed: only a closing emoji (👍, 🙏, …)",
                "question": "needs a reply: it asks something",
                "too_long": "needs a reply: too long to be a mere thanks",
                "empty": "needs a reply: no text to read, so it is counted",
                "other": "needs a reply: it says more than thanks",
            },
            "closing_emoji": sorted(CLOSING_EMOJI),
            "quote_headers": list(QUOTE_HEADERS),
            "languages": {
                lang: {
                    "closing_words": sorted(set(CLOSING[lang]["closing"])),
                    "allowed_words": sorted(set(CLOSING[lang]["allowed"])),
                    "sign_offs": sorted(set(SIGN_OFFS[lang])),
                }
                for lang in _LANGUAGE_ORDER
            },
        },
        "level": {
            "description": (
                "Read in the subject and the first message. Level 2 rules are tried first; "
                "a word ending in * matches any word it begins; up to two other words may sit "
                "between a phrase's words. Nothing matched: the default level."
            ),
            "default": DEFAULT_LEVEL,
            "rules": [
                {"id": rule_id, "level": rule_level, "phrases": {k: list(v) for k, v in p.items()}}
                for rule_id, rule_level, p in LEVEL_RULES
            ],
        },
    }


RULES: dict[str, Any] = _rules()
