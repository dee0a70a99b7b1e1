"""Closing thanks and level detection on a multilingual table, both ways, with the rule ids."""

import json

import pytest

from app.tickets.classify import RULES, Verdict, level, needs_reply

# (language, body, expected rule). A rule starting "closing" means no reply is needed.
NEEDS_REPLY = [
    # fr: closing
    ("fr", "merci, c'est parfait", "closing_thanks.fr"),
    ("fr", "ok merci", "closing_thanks.fr"),
    ("fr", "Super merci beaucoup !", "closing_thanks.fr"),
    ("fr", "Merci pour votre réponse rapide, bonne journée", "closing_thanks.fr"),
    ("fr", "Parfait, merci encore 😊", "closing_thanks.fr"),
    ("fr", "Bien reçu, merci !\n\nCordialement,\nMarie Dupont", "closing_thanks.fr"),
    ("fr", "Merci\nJean-Marc", "closing_thanks.fr"),
    ("fr", "C'est réglé, merci à vous", "closing_thanks.fr"),
    (
        "fr",
        "Nickel, merci !\n\nLe 3 mars 2026 à 10:12, Boutique <sav@boutique.fr> a écrit :\n"
        "> Votre colis est parti ce matin. Avez-vous d'autres questions ?",
        "closing_thanks.fr",
    ),
    # fr: needs a reply
    ("fr", "merci, mais le colis n'est pas arrivé", "other"),
    ("fr", "Merci. Et pour le remboursement ?", "question"),
    ("fr", "merci mais toujours rien reçu", "other"),
    ("fr", "Merci d'avance pour votre retour", "other"),
    ("fr", "Ok merci 😡", "other"),
    ("fr", "c'est pas parfait du tout", "other"),
    ("fr", "Bonjour, ma commande est arrivée abîmée, que faire", "other"),
    # en: closing
    ("en", "thanks, all good", "closing_thanks.en"),
    ("en", "Thank you so much!", "closing_thanks.en"),
    ("en", "Perfect, thanks a lot for your help.", "closing_thanks.en"),
    ("en", "Got it, cheers", "closing_thanks.en"),
    ("en", "Thanks!\n\nBest regards,\nJohn Smith", "closing_thanks.en"),
    ("en", "Parcel arrived safely, thank you", "closing_thanks.en"),
    ("en", "👍", "closing_emoji"),
    (
        "en",
        "Great, thanks!\n\nOn Tue, 3 Mar 2026 at 10:12, Shop <help@shop.com> wrote:\n> Any news?",
        "closing_thanks.en",
    ),
    # en: needs a reply
    ("en", "thanks, when will it ship?", "question"),
    ("en", "Thanks for nothing.", "other"),
    ("en", "Thanks, but the size is wrong", "other"),
    ("en", "Thank you. Still not received though", "other"),
    ("en", "thanks " * 30, "too_long"),
    ("en", "Not good, thanks", "other"),
    ("en", "   ", "empty"),
    # it: closing
    ("it", "grazie mille", "closing_thanks.it"),
    ("it", "perfetto grazie", "closing_thanks.it"),
    ("it", "Tutto a posto, grazie ancora!", "closing_thanks.it"),
    ("it", "Ricevuto, grazie. Buona giornata", "closing_thanks.it"),
    ("it", "Grazie per la risposta rapida!\nCordiali saluti\nGiulia Rossi", "closing_thanks.it"),
    ("it", "Ok, va bene così, grazie", "closing_thanks.it"),
    ("it", "Gentilissimi, grazie 🙏", "closing_thanks.it"),
    ("it", "Il pacco è arrivato, grazie!", "closing_thanks.it"),
    # it: needs a reply
    ("it", "grazie, ma...", "other"),
    ("it", "Grazie, ma il pacco non è arrivato", "other"),
    ("it", "Grazie. Quando arriva il rimborso?", "question"),
    ("it", "grazie ma la taglia è sbagliata", "other"),
    ("it", "Non va bene, grazie", "other"),
    ("it", "Buongiorno, il prodotto è rotto", "other"),
    ("it", "Grazie, ancora niente", "other"),
    ("it", "Grazie 👎", "other"),
    # es: closing
    ("es", "¡gracias!", "closing_thanks.es"),
    ("es", "Muchas gracias por todo", "closing_thanks.es"),
    ("es", "Perfecto, muchas gracias", "closing_thanks.es"),
    ("es", "Vale, gracias. Un saludo", "closing_thanks.es"),
    ("es", "Recibido, todo correcto. ¡Gracias!\nSaludos,\nAna", "closing_thanks.es"),
    ("es", "Ya ha llegado el paquete, gracias", "closing_thanks.es"),
    ("es", "Genial, sois muy amables", "closing_thanks.es"),
    ("es", "De acuerdo, gracias 👍", "closing_thanks.es"),
    # es: needs a reply
    ("es", "Gracias, ¿y el reembolso?", "question"),
    ("es", "Gracias, pero no ha llegado nada", "other"),
    ("es", "gracias pero la talla no es correcta", "other"),
    ("es", "No está bien, gracias", "other"),
    ("es", "Gracias. Todavía espero el paquete", "other"),
    ("es", "Hola, el producto llegó roto", "other"),
    ("es", "¿Gracias?", "question"),
    # de: closing
    ("de", "danke schön", "closing_thanks.de"),
    ("de", "vielen Dank, das war's", "closing_thanks.de"),
    ("de", "Super, danke!", "closing_thanks.de"),
    ("de", "Alles klar, vielen Dank für die schnelle Antwort", "closing_thanks.de"),
    ("de", "Paket ist angekommen, danke!\n\nViele Grüße\nJonas Weber", "closing_thanks.de"),
    ("de", "Passt, danke 👌", "closing_thanks.de"),
    ("de", "Perfekt, danke nochmals", "closing_thanks.de"),
    (
        "de",
        "Danke!\n\nAm 03.03.2026 um 10:12 schrieb Shop <info@shop.de>:\n> Ist alles in Ordnung?",
        "closing_thanks.de",
    ),
    # de: needs a reply
    ("de", "Danke, aber das Paket fehlt noch", "other"),
    ("de", "Danke. Wann kommt die Erstattung?", "question"),
    ("de", "Danke, das ist nicht in Ordnung", "other"),
    ("de", "Danke, leider immer noch nichts", "other"),
    ("de", "Nicht gut, danke", "other"),
    ("de", "Hallo, der Artikel ist kaputt", "other"),
    ("de", "danke " * 26, "too_long"),
]


@pytest.mark.parametrize(("language", "body", "rule"), NEEDS_REPLY)
def test_needs_reply(language: str, body: str, rule: str) -> None:
    assert needs_reply(body, language) == Verdict(not rule.startswith("closing"), rule)


def test_each_language_has_fifteen_examples_both_ways() -> None:
    for lang in ("fr", "en", "it", "es", "de"):
        rows = [rule for language, _, rule in NEEDS_REPLY if language == lang]
        closing = sum(rule.startswith("closing") for rule in rows)
        assert len(rows) >= 15 and closing >= 5 and len(rows) - closing >= 5, lang


def test_a_missing_body_needs_a_reply() -> None:
    assert needs_reply(None, None) == Verdict(True, "empty")
    assert needs_reply("", "fr") == Verdict(True, "empty")


def test_the_language_tag_may_be_wrong_or_missing() -> None:
    assert needs_reply("grazie mille", "fr") == Verdict(False, "closing_thanks.it")
    assert needs_reply("danke schön", None) == Verdict(False, "closing_thanks.de")
    assert needs_reply("merci beaucoup", "fr-FR") == Verdict(False, "closing_thanks.fr")


def test_a_quoted_question_does_not_make_a_thanks_a_question() -> None:
    body = "Merci !\n> Pouvez-vous confirmer votre adresse ?"
    assert needs_reply(body, "fr") == Verdict(False, "closing_thanks.fr")


# (language, subject, body, level, rule)
LEVELS = [
    # fr
    ("fr", None, "Bonjour, où est ma commande ?", 1, "order_status.fr"),
    ("fr", "Suivi colis", "Je n'ai pas le numéro", 1, "order_status.fr"),
    ("fr", None, "Quand serai-je remboursé ?", 1, "refund.fr"),
    ("fr", None, "Comment faire un retour ?", 1, "return_exchange.fr"),
    ("fr", None, "Je voudrais échanger contre une taille 40", 1, "return_exchange.fr"),
    ("fr", None, "Le vase est arrivé cassé", 1, "non_conforming.fr"),
    ("fr", None, "Pourriez-vous m'envoyer la facture ?", 1, "invoice.fr"),
    ("fr", None, "Je me suis trompé d'adresse, pouvez-vous la changer ?", 1, "address_change.fr"),
    ("fr", None, "Bonjour", 1, "default"),
    ("fr", None, "J'ai contacté mon avocat", 2, "legal.fr"),
    ("fr", None, "Sans réponse, je fais opposition auprès de ma banque", 2, "chargeback.fr"),
    ("fr", None, "Le colis est marqué livré mais je n'ai rien", 2, "carrier_investigation.fr"),
    (
        "fr",
        None,
        "Où est ma commande ? Le transporteur parle d'une enquête",
        2,
        "carrier_investigation.fr",
    ),
    ("fr", None, "Le téléphone est sous garantie, il ne s'allume plus", 2, "warranty_repair.fr"),
    ("fr", None, "Je vous ai déjà écrit plusieurs fois", 2, "repeated_contacts.fr"),
    ("fr", None, "Mon assurance demande une attestation", 2, "insurance.fr"),
    # en
    ("en", None, "Where is my order?", 1, "order_status.en"),
    ("en", "Tracking", "Can you send it?", 1, "order_status.en"),
    ("en", None, "I'd like a refund please", 1, "refund.en"),
    ("en", None, "How do I return these shoes?", 1, "return_exchange.en"),
    ("en", None, "The mug arrived broken", 1, "non_conforming.en"),
    ("en", None, "You sent me the wrong colour", 1, "non_conforming.en"),
    ("en", None, "Could I get an invoice for my company?", 1, "invoice.en"),
    ("en", None, "Please update my address before it ships", 1, "address_change.en"),
    ("en", None, "Hello there", 1, "default"),
    ("en", None, "I will be speaking to my lawyer", 2, "legal.en"),
    ("en", None, "I have opened a dispute with PayPal", 2, "chargeback.en"),
    ("en", None, "Tracking says delivered but it never arrived", 2, "carrier_investigation.en"),
    ("en", None, "The manufacturer should repair it", 2, "supplier.en"),
    ("en", None, "This is the third time I'm asking", 2, "repeated_contacts.en"),
    ("en", None, "Is the parcel insured?", 2, "insurance.en"),
    # it
    ("it", None, "Dov'è il mio ordine?", 1, "order_status.it"),
    ("it", None, "Non ho ricevuto il pacco", 1, "order_status.it"),
    ("it", None, "Vorrei il rimborso", 1, "refund.it"),
    ("it", None, "Come faccio il reso?", 1, "return_exchange.it"),
    ("it", None, "La lampada è arrivata rotta", 1, "non_conforming.it"),
    ("it", None, "Mi serve la fattura", 1, "invoice.it"),
    ("it", None, "Posso cambiare l'indirizzo?", 1, "address_change.it"),
    ("it", None, "Buongiorno", 1, "default"),
    ("it", None, "Mi rivolgerò a un avvocato", 2, "legal.it"),
    ("it", None, "Ho aperto una contestazione con la mia banca", 2, "chargeback.it"),
    ("it", None, "Il pacco risulta consegnato ma non c'è", 2, "carrier_investigation.it"),
    ("it", None, "È ancora in garanzia?", 2, "warranty_repair.it"),
    ("it", None, "Vi ho già scritto più volte", 2, "repeated_contacts.it"),
    ("it", None, "Il fornitore cosa dice?", 2, "supplier.it"),
    ("it", None, "Pacco smarrito dal corriere", 2, "carrier_investigation.it"),
    # es
    ("es", None, "¿Dónde está mi pedido?", 1, "order_status.es"),
    ("es", None, "No he recibido nada todavía", 1, "order_status.es"),
    ("es", None, "Quiero el reembolso", 1, "refund.es"),
    ("es", None, "¿Cómo hago la devolución?", 1, "return_exchange.es"),
    ("es", None, "La taza llegó rota", 1, "non_conforming.es"),
    ("es", None, "Necesito la factura", 1, "invoice.es"),
    ("es", None, "Quiero modificar la dirección de envío", 1, "address_change.es"),
    ("es", None, "Hola", 1, "default"),
    ("es", None, "Hablaré con mi abogado", 2, "legal.es"),
    ("es", None, "Abriré una disputa con mi banco", 2, "chargeback.es"),
    ("es", None, "Aparece como entregado pero no lo tengo", 2, "carrier_investigation.es"),
    ("es", None, "¿Lo cubre la garantía?", 2, "warranty_repair.es"),
    ("es", None, "Ya he escrito varias veces", 2, "repeated_contacts.es"),
    ("es", None, "¿El proveedor tiene repuestos?", 2, "supplier.es"),
    ("es", None, "Voy a reclamar a la aseguradora", 2, "insurance.es"),
    # de
    ("de", None, "Wo ist meine Bestellung?", 1, "order_status.de"),
    ("de", None, "Paket nicht angekommen", 1, "order_status.de"),
    ("de", None, "Wann bekomme ich die Rückerstattung?", 1, "refund.de"),
    ("de", None, "Wann kommt mein Paket?", 1, "order_status.de"),
    ("de", None, "Wie funktioniert die Rücksendung?", 1, "return_exchange.de"),
    ("de", None, "Die Tasse ist kaputt angekommen", 1, "non_conforming.de"),
    ("de", None, "Bitte schicken Sie mir die Rechnung", 1, "invoice.de"),
    ("de", None, "Guten Tag", 1, "default"),
    ("de", None, "Ich schalte meinen Anwalt ein", 2, "legal.de"),
    ("de", None, "Ich veranlasse eine Rückbuchung", 2, "chargeback.de"),
    ("de", None, "Laut Tracking als zugestellt, aber nichts da", 2, "carrier_investigation.de"),
    ("de", None, "Ist das noch Garantie?", 2, "warranty_repair.de"),
    ("de", None, "Ich habe schon mehrmals geschrieben", 2, "repeated_contacts.de"),
    ("de", None, "Was sagt der Hersteller?", 2, "supplier.de"),
    ("de", None, "Ist der Versand versichert?", 2, "insurance.de"),
]


@pytest.mark.parametrize(("language", "subject", "body", "expected", "rule"), LEVELS)
def test_level(language: str, subject: str | None, body: str, expected: int, rule: str) -> None:
    assert level(body, subject, language) == (expected, rule)


def test_each_language_has_fifteen_level_examples_both_ways() -> None:
    for lang in ("fr", "en", "it", "es", "de"):
        levels = [expected for language, _, _, expected, _ in LEVELS if language == lang]
        assert len(levels) >= 15 and levels.count(1) >= 5 and levels.count(2) >= 5, lang


def test_level_without_text_is_the_default() -> None:
    assert level(None, None, None) == (1, "default")


def test_rules_are_json_and_stable() -> None:
    shown = json.loads(json.dumps(RULES, ensure_ascii=False))
    assert set(shown) == {"needs_reply", "level"}
    assert set(shown["needs_reply"]["languages"]) == {"fr", "en", "it", "es", "de"}
    assert "merci" in shown["needs_reply"]["languages"]["fr"]["closing_words"]
    assert shown["level"]["default"] == 1
    ids = [rule["id"] for rule in shown["level"]["rules"]]
    assert ids.index("legal") < ids.index("order_status")
    for rule in shown["level"]["rules"]:
        assert set(rule["phrases"]) == {"fr", "en", "it", "es", "de"}, rule["id"]
