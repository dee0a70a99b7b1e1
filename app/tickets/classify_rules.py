"""The words and phrases `classify.py` reads a message with, per language: data, not code.

Written as people write them (accents, capitals); `classify.py` normalises them the same way
as the messages (case folded, accents removed) before matching.
"""

# fmt: off
# (Word lists wrapped by hand, several a line: one word a line would be a thousand lines.)

# A closing thanks is a short message made only of these words (after sign-offs, quoted mail and
# punctuation are cut), holding at least one `closing` word. Any other word ("mais", "colis
# abîmé", "when", a name after "Bonjour") makes it a message that needs a reply: when in doubt,
# the message counts against the response rate, never the other way round. Negations ("pas",
# "not", "nicht", "no", "non") are deliberately in no list.
CLOSING: dict[str, dict[str, tuple[str, ...]]] = {
    "fr": {
        "closing": (
            "merci", "remercie", "remerciements", "parfait", "parfaitement", "ok", "okay",
            "oki", "super", "top", "génial", "nickel", "impeccable", "entendu", "excellent",
            "cool", "formidable", "merveilleux", "accord", "résolu", "réglé", "marche",
        ),
        "allowed": (
            "beaucoup", "mille", "encore", "bien", "très", "vraiment", "infiniment", "c", "est",
            "ça", "cela", "tout", "bon", "bonne", "journée", "soirée", "fin", "week", "end",
            "weekend", "vous", "toi", "à", "a", "pour", "votre", "vos", "ta", "aide", "réponse",
            "retour", "rapide", "rapidité", "le", "la", "les", "l", "de", "du", "des", "d", "et",
            "je", "j", "ai", "on", "reçu", "reçue", "bien", "arrivé", "arrivée", "colis",
            "commande", "problème", "bonjour", "salut", "hello", "re", "au", "revoir", "bientôt",
            "gentil", "gentille", "sympa", "efficace", "service", "équipe", "nous", "en", "effet",
            "trop", "si", "the", "sa", "ma", "mon", "votre", "suis", "ravi", "ravie", "contente",
            "content", "tous", "madame", "monsieur",
        ),
    },
    "en": {
        "closing": (
            "thanks", "thank", "thx", "ty", "cheers", "perfect", "ok", "okay", "great",
            "awesome", "brilliant", "excellent", "fantastic", "wonderful", "noted", "understood",
            "appreciated", "appreciate", "sorted", "solved", "resolved", "lovely", "cool",
        ),
        "allowed": (
            "you", "so", "much", "very", "a", "lot", "again", "all", "good", "is", "it", "s",
            "that", "thats", "this", "the", "for", "your", "help", "reply", "response", "quick",
            "fast", "quickly", "swift", "have", "nice", "day", "weekend", "evening", "everything",
            "fine", "works", "now", "problem", "issue", "many", "really", "and", "i", "we", "got",
            "parcel", "package", "order", "item", "arrived", "received", "just", "hi", "hello",
            "dear", "team", "guys", "kind", "of", "super", "with", "too", "as", "always", "great",
            "service", "most", "helpful", "am", "m", "happy", "glad", "now", "safely", "well",
        ),
    },
    "it": {
        "closing": (
            "grazie", "ringrazio", "perfetto", "perfetta", "ok", "okay", "ottimo", "ottima",
            "benissimo", "fantastico", "gentilissimi", "gentilissimo", "gentilissima", "ricevuto",
            "ricevuta", "chiaro", "capito", "risolto", "top", "super", "eccellente", "accordo",
        ),
        "allowed": (
            "mille", "tante", "molte", "tantissime", "infinite", "davvero", "ancora", "tutto",
            "a", "posto", "per", "la", "il", "lo", "l", "vostra", "vostro", "sua", "suo", "tuo",
            "tua", "aiuto", "risposta", "rapida", "veloce", "disponibilità", "gentilezza",
            "buona", "buon", "giornata", "serata", "fine", "settimana", "e", "è", "ho", "pacco",
            "ordine", "arrivato", "arrivata", "ciao", "salve", "buongiorno", "siete", "stati",
            "molto", "gentili", "tutti", "così", "problema", "va", "bene", "d", "di", "nuovo",
            "sono", "contento", "contenta", "servizio",
        ),
    },
    "es": {
        "closing": (
            "gracias", "agradezco", "perfecto", "perfecta", "ok", "okay", "vale", "genial",
            "estupendo", "excelente", "entendido", "recibido", "recibida", "solucionado",
            "resuelto", "acuerdo", "listo", "buenísimo", "fenomenal",
        ),
        "allowed": (
            "muchas", "muchísimas", "mil", "todo", "bien", "por", "su", "tu", "vuestra",
            "vuestro", "ayuda", "respuesta", "rápida", "atención", "amabilidad", "buen",
            "buena", "día", "tarde", "noches", "fin", "de", "semana", "el", "la", "lo", "los",
            "las", "y", "ya", "he", "ha", "llegado", "paquete", "pedido", "está", "correcto",
            "muy", "amables", "amable", "hola", "buenas", "un", "saludo", "problema", "otra",
            "vez", "nuevo", "es", "sois", "son", "a", "todos", "servicio", "estoy", "contento",
            "contenta", "os", "le", "les", "doy",
        ),
    },
    "de": {
        "closing": (
            "danke", "dank", "bedanke", "perfekt", "ok", "okay", "super", "prima", "klasse",
            "toll", "wunderbar", "klar", "erledigt", "verstanden", "erhalten", "passt", "top",
            "bestens", "spitze",
        ),
        "allowed": (
            "schön", "sehr", "vielen", "vielmals", "herzlichen", "herzlich", "besten", "lieben",
            "recht", "tausend", "für", "die", "das", "der", "den", "dem", "ihre", "ihr", "eure",
            "hilfe", "antwort", "schnelle", "schnell", "rasche", "war", "s", "es", "ist", "alles",
            "jetzt", "wieder", "in", "ordnung", "einen", "schönen", "tag", "abend", "wochenende",
            "noch", "und", "ich", "habe", "hat", "paket", "bestellung", "angekommen", "problem",
            "gelöst", "geklärt", "hallo", "guten", "liebe", "lieber", "team", "wirklich",
            "nochmals", "mal", "so", "dann", "gut", "auch", "euch", "ihnen", "sich", "bin",
            "zufrieden", "service", "gruß",
        ),
    },
}

# Emoji alone (or with closing words) close a conversation: 👍, 🙏, 👌, ❤️, smiles.
CLOSING_EMOJI: tuple[str, ...] = (
    "\U0001f44d", "\U0001f64f", "\U0001f44c", "\u2764", "\U0001f60a", "\U0001f642",
    "\U0001f600", "\U0001f603", "\U0001f604", "\u263a", "\u2705", "\U0001f970", "\U0001f618",
)

# Where the customer's own words end. A sign-off cuts the text from itself to the end (the name
# that follows); a quote header or a line starting with ">" cuts the quoted previous mail.
SIGN_OFFS: dict[str, tuple[str, ...]] = {
    "fr": (
        "cordialement", "bien cordialement", "bien à vous", "salutations", "sincères salutations",
        "bonne continuation", "envoyé de mon",
    ),
    "en": (
        "best regards", "kind regards", "regards", "best wishes", "sincerely", "yours truly",
        "sent from my",
    ),
    "it": ("cordiali saluti", "distinti saluti", "saluti", "un saluto", "inviato da"),
    "es": ("saludos", "un saludo", "atentamente", "cordialmente", "enviado desde"),
    "de": (
        "mit freundlichen grüßen", "freundliche grüße", "viele grüße", "liebe grüße",
        "beste grüße", "grüße", "lg", "mfg", "gesendet von",
    ),
}

# "Le 3 mars 2026 à 10:12, Boutique <x@y> a écrit :" and its siblings: regular expressions on the
# normalised text (lower case, no accents), matched at a line start.
QUOTE_HEADERS: tuple[str, ...] = (
    r"le .{0,120} a ecrit ?:",
    r"on .{0,120} wrote ?:",
    r"il giorno .{0,120} ha scritto ?:",
    r".{0,120} ha scritto ?:",
    r"el .{0,120} escribio ?:",
    r"am .{0,120} schrieb .{0,120}:",
    r"-{2,} ?(original|message d'origine|messaggio originale|mensaje original|"
    r"ursprungliche nachricht)",
    r"de ?: .{0,200}",
    r"from ?: .{0,200}",
    r"von ?: .{0,200}",
    r"da ?: .{0,200}",
)

# Level detection: phrases read in the subject and the first message. Level 2 rules are tried
# first (any match makes it complex), then level 1. A word ending in "*" matches any word it
# begins ("rembours*" = remboursement, rembourser); up to two other words may sit between the
# words of a phrase ("où est ma commande" matches "où est donc ma commande").
LEVEL_RULES: tuple[tuple[str, int, dict[str, tuple[str, ...]]], ...] = (
    (
        "legal",
        2,
        {
            "fr": (
                "avocat*", "tribunal", "justice", "mise en demeure", "plainte", "poursuites",
                "ufc", "que choisir", "association de consommateurs", "dgccrf", "médiateur",
                "conciliateur", "huissier", "action en justice", "arnaque*", "escroquer*",
            ),
            "en": (
                "lawyer*", "attorney", "solicitor", "court", "legal action", "lawsuit",
                "trading standards", "consumer protection", "consumer association", "ombudsman",
                "small claims", "scam*", "fraud*",
            ),
            "it": (
                "avvocat*", "tribunale", "diffida", "denuncia", "azioni legali", "vie legali",
                "associazione consumatori", "codacons", "altroconsumo", "truffa*",
            ),
            "es": (
                "abogad*", "tribunal*", "juzgado", "demanda*", "denuncia*", "acciones legales",
                "asociación de consumidores", "ocu", "facua", "estafa*",
            ),
            "de": (
                "anwalt", "anwält*", "rechtsanwalt", "gericht", "klage", "verbraucherzentrale",
                "verbraucherschutz", "mahnung", "rechtliche schritte", "betrug*", "abzocke",
            ),
        },
    ),
    (
        "chargeback",
        2,
        {
            "fr": (
                "rétrofacturation", "chargeback", "opposition", "litige paypal", "litige",
                "contestation bancaire", "contester le paiement", "ma banque",
            ),
            "en": (
                "chargeback", "charge back", "dispute", "my bank", "paypal claim",
                "reverse the payment", "card issuer",
            ),
            "it": (
                "chargeback", "contestazione", "contestare il pagamento", "mia banca",
                "reclamo paypal", "storno",
            ),
            "es": (
                "contracargo", "chargeback", "disputa", "mi banco", "reclamación en paypal",
                "retrocesión",
            ),
            "de": (
                "chargeback", "rückbuchung", "meine bank", "paypal konflikt", "paypal fall",
                "zahlung zurückbuchen", "widerspruch",
            ),
        },
    ),
    (
        "carrier_investigation",
        2,
        {
            "fr": (
                "enquête", "colis perdu", "perdu par", "marqué livré", "indiqué livré",
                "livré mais", "jamais reçu", "volé", "réclamation transporteur",
            ),
            "en": (
                "investigation", "lost parcel", "lost package", "parcel lost", "package lost",
                "marked as delivered", "says delivered", "never received", "never arrived",
                "stolen", "carrier claim",
            ),
            "it": (
                "indagine", "pacco smarrito", "pacco perso", "risulta consegnato", "mai ricevuto",
                "mai arrivato", "rubato", "reclamo al corriere",
            ),
            "es": (
                "investigación", "paquete perdido", "extraviado", "figura como entregado",
                "aparece como entregado", "nunca recibí", "nunca llegó", "robado",
            ),
            "de": (
                "nachforschung*", "nachforschungsauftrag", "paket verloren", "verloren gegangen",
                "als zugestellt", "nie angekommen", "nie erhalten", "gestohlen",
            ),
        },
    ),
    (
        "insurance",
        2,
        {
            "fr": ("assurance", "assureur", "sinistre"),
            "en": ("insurance", "insurer", "insured"),
            "it": ("assicurazione", "assicurat*"),
            "es": ("aseguradora", "el seguro", "compañía de seguros"),
            "de": ("versicherung", "versichert"),
        },
    ),
    (
        "supplier",
        2,
        {
            "fr": ("fournisseur", "fabricant", "constructeur"),
            "en": ("supplier", "manufacturer", "vendor"),
            "it": ("fornitore", "produttore", "casa madre"),
            "es": ("proveedor", "fabricante"),
            "de": ("lieferant", "hersteller"),
        },
    ),
    (
        "warranty_repair",
        2,
        {
            "fr": ("garantie", "réparation", "réparer", "sav"),
            "en": ("warranty", "guarantee", "repair*"),
            "it": ("garanzia", "riparazione", "riparare", "assistenza tecnica"),
            "es": ("garantía", "reparación", "reparar", "servicio técnico"),
            "de": ("garantie", "gewährleistung", "reparatur", "reparieren"),
        },
    ),
    (
        "repeated_contacts",
        2,
        {
            "fr": (
                "déjà écrit", "déjà contacté", "déjà signalé", "plusieurs fois", "troisième fois",
                "énième", "toujours sans réponse", "aucune réponse", "personne ne répond",
            ),
            "en": (
                "already wrote", "already written", "already contacted", "several times",
                "third time", "multiple times", "still no answer", "no reply", "no one answers",
                "nobody answers", "yet again",
            ),
            "it": (
                "già scritto", "già contattato", "più volte", "terza volta", "ennesima",
                "nessuna risposta", "ancora nessuna risposta", "sollecito",
            ),
            "es": (
                "ya he escrito", "ya escribí", "ya os contacté", "varias veces", "tercera vez",
                "enésima", "sin respuesta", "nadie responde", "nadie contesta",
            ),
            "de": (
                "bereits geschrieben", "schon geschrieben", "mehrmals", "mehrfach", "dritten mal",
                "keine antwort", "niemand antwortet", "erneut",
            ),
        },
    ),
    (
        "invoice",
        1,
        {
            "fr": ("facture",),
            "en": ("invoice", "receipt"),
            "it": ("fattura",),
            "es": ("factura",),
            "de": ("rechnung",),
        },
    ),
    (
        "address_change",
        1,
        {
            "fr": ("adresse",),
            "en": ("address",),
            "it": ("indirizzo",),
            "es": ("dirección",),
            "de": ("adresse", "anschrift", "lieferadresse"),
        },
    ),
    (
        "non_conforming",
        1,
        {
            "fr": (
                "abîmé*", "cassé*", "endommagé*", "défectueu*", "ne fonctionne pas",
                "ne marche pas", "non conforme", "mauvais*", "erreur", "manquant*", "manque",
                "pas le bon",
            ),
            "en": (
                "damaged", "broken", "defective", "faulty", "not working", "doesn t work",
                "wrong", "missing", "not as described",
            ),
            "it": (
                "danneggiat*", "rott*", "difettos*", "non funziona", "sbagliat*", "mancant*",
                "non conforme",
            ),
            "es": (
                "dañad*", "roto", "rota", "defectuos*", "no funciona", "equivocad*",
                "incorrect*", "falta", "no corresponde",
            ),
            "de": (
                "beschädigt", "kaputt", "defekt", "funktioniert nicht", "falsch*", "fehlt",
                "nicht wie beschrieben",
            ),
        },
    ),
    (
        "refund",
        1,
        {
            "fr": ("rembours*",),
            "en": ("refund*", "money back", "reimburse*"),
            "it": ("rimbors*", "rimborsa*", "soldi indietro"),
            "es": ("reembols*", "devolución del dinero", "devolver el dinero"),
            "de": ("rückerstattung", "erstatt*", "geld zurück"),
        },
    ),
    (
        "return_exchange",
        1,
        {
            "fr": ("retour", "retourner", "renvoyer", "échange*", "étiquette"),
            "en": ("return*", "exchange*", "send it back", "swap", "label"),
            "it": ("reso", "restituire", "cambio", "cambiare", "sostituzione"),
            "es": ("devolución", "devolver", "cambio", "cambiar", "etiqueta"),
            "de": ("rücksendung", "retoure", "zurückschicken", "umtausch*", "rücksende*"),
        },
    ),
    (
        "order_status",
        1,
        {
            "fr": (
                "où est ma commande", "où en est", "suivi", "numéro de suivi", "tracking",
                "pas encore reçu", "toujours pas reçu", "quand vais je recevoir", "délai",
                "expédi*", "livraison", "reçu ma commande",
            ),
            "en": (
                "where is my order", "where is my parcel", "tracking", "track my", "not received",
                "not arrived", "has not arrived", "when will", "shipped", "dispatched",
                "delivery",
            ),
            "it": (
                "dov è il mio ordine", "dove è il mio ordine", "tracking", "numero di tracciamento",
                "spedizione", "spedit*", "non ho ricevuto", "non è arrivato", "consegna", "quando",
            ),
            "es": (
                "dónde está mi pedido", "seguimiento", "tracking", "no he recibido",
                "no ha llegado", "cuándo", "envío", "enviado", "entrega",
            ),
            "de": (
                "wo ist meine bestellung", "sendungsverfolgung", "sendungsnummer", "tracking",
                "nicht angekommen", "nicht erhalten", "noch nicht", "wann", "versand", "versendet",
                "lieferung",
            ),
        },
    ),
)

# fmt: on

# When nothing matches: level 1. Most contacts are the routine ones, and a level 2 needs
# evidence (a third party, a dispute, repeated contacts) that a merchant can read in the rule.
DEFAULT_LEVEL = 1
