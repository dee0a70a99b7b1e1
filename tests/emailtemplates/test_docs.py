"""The examples of docs/templates.md: one per language, each saved as it is and previewed."""

import re
from pathlib import Path

import httpx

from tests.emailtemplates.test_templates_api import preview, url
from tests.factories import create_shop

DOC = Path(__file__).resolve().parents[2] / "docs" / "templates.md"
FENCE = re.compile(r"^```\S+ (\w\w) (subject|html|text)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def examples() -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for language, part, source in FENCE.findall(DOC.read_text("utf-8")):
        found.setdefault(language, {})[part] = source.rstrip("\n") if part == "subject" else source
    return found


async def test_every_example_of_the_docs_is_accepted(client: httpx.AsyncClient) -> None:
    found = examples()
    assert sorted(found) == ["de", "en", "es", "fr", "it"]
    shop = await create_shop(client, name="Boutique Exemple")
    for language, parts in found.items():
        assert sorted(parts) == ["html", "subject", "text"], language
        for kind in ("request", "reminder"):
            saved = await client.put(url(shop, kind, language), json=parts, headers=shop.auth)
            assert saved.status_code == 201, (language, saved.text)
        first = await preview(client, shop, kind="request", language=language)
        again = await preview(client, shop, kind="reminder_2", language=language)
        assert first["template"] == again["template"] == "merchant"
        assert "Boutique Exemple" in first["subject"]
        assert first["subject"] != again["subject"]  # the reminder says so
        assert "/u/sample." in first["html"] and "/u/sample." in first["text"]
