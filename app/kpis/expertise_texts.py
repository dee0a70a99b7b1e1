"""What to improve to climb the expertise ladder, in plain words, in fr, en, it, es, de."""

from datetime import date

from babel.dates import format_date
from babel.numbers import format_decimal, format_percent

from app.languages import FALLBACK_LANGUAGE, LANGUAGES

# The default ladder's names as merchants know them; a merchant's own level is shown as named.
LEVEL_NAMES: dict[str, dict[str, str]] = {
    "conqueror": {
        "en": "Conqueror", "fr": "Conquérant", "it": "Conquistatore", "es": "Conquistador",
        "de": "Eroberer",
    },
    "captain": {
        "en": "Captain", "fr": "Capitaine", "it": "Capitano", "es": "Capitán", "de": "Kapitän",
    },
    "superhero": {
        "en": "Superhero", "fr": "Super-héros", "it": "Supereroe", "es": "Superhéroe",
        "de": "Superheld",
    },
}  # fmt: skip

TEMPLATES: dict[str, dict[str, str]] = {
    "seniority": {
        "en": "Seniority: {value} of the {threshold} months {level} asks for; reached on {date}.",
        "fr": "Ancienneté : {value} mois sur les {threshold} demandés pour {level} ; "
        "atteinte le {date}.",
        "it": "Anzianità: {value} mesi sui {threshold} richiesti per {level}; raggiunta il {date}.",
        "es": "Antigüedad: {value} de los {threshold} meses que pide {level}; "
        "se alcanza el {date}.",
        "de": "Dauer als Verkäufer: {value} von {threshold} Monaten, die {level} verlangt; "
        "erreicht am {date}.",
    },
    "rating_mean": {
        "en": "Mean rating of your orders: {value}, {level} asks for {threshold}. More 5-star "
        "ratings that would lift it there: about {n}.",
        "fr": "Note moyenne de vos commandes : {value}, {level} demande {threshold}. Notes de "
        "5 étoiles qu'il faudrait en plus : environ {n}.",
        "it": "Voto medio dei tuoi ordini: {value}, {level} richiede {threshold}. Voti da "
        "5 stelle in più che servirebbero: circa {n}.",
        "es": "Valoración media de tus pedidos: {value}, {level} pide {threshold}. Valoraciones "
        "de 5 estrellas más que harían falta: unas {n}.",
        "de": "Durchschnittsbewertung Ihrer Bestellungen: {value}, {level} verlangt {threshold}. "
        "Dafür nötige weitere 5-Sterne-Bewertungen: etwa {n}.",
    },
    "rating_mean_none": {
        "en": "No order rating yet: {level} asks for a mean of {threshold}; ask your customers "
        "for reviews.",
        "fr": "Aucune note de commande pour l'instant : {level} demande une moyenne de "
        "{threshold} ; demandez des avis à vos clients.",
        "it": "Nessun voto sugli ordini per ora: {level} richiede una media di {threshold}; "
        "chiedi recensioni ai tuoi clienti.",
        "es": "Todavía no hay valoraciones de pedidos: {level} pide una media de {threshold}; "
        "pide opiniones a tus clientes.",
        "de": "Noch keine Bestellbewertung: {level} verlangt einen Durchschnitt von {threshold}; "
        "bitten Sie Ihre Kunden um Bewertungen.",
    },
    "positive_ratings": {
        "en": "Ratings of 4 or 5 stars: {value} of the {threshold} {level} asks for; "
        "{missing} more to collect.",
        "fr": "Notes de 4 ou 5 étoiles : {value} sur les {threshold} demandées pour {level} ; "
        "encore {missing} à obtenir.",
        "it": "Voti da 4 o 5 stelle: {value} sui {threshold} richiesti per {level}; "
        "ancora da ottenere: {missing}.",
        "es": "Valoraciones de 4 o 5 estrellas: {value} de las {threshold} que pide {level}; "
        "aún por conseguir: {missing}.",
        "de": "Bewertungen mit 4 oder 5 Sternen: {value} von {threshold}, die {level} verlangt; "
        "noch {missing}.",
    },
    "quality": {
        "en": "After-sales quality from {start} to {end}: {value}, {level} asks for {threshold}.",
        "fr": "Qualité du SAV du {start} au {end} : {value}, {level} demande {threshold}.",
        "it": "Qualità del post-vendita dal {start} al {end}: {value}, {level} richiede "
        "{threshold}.",
        "es": "Calidad posventa del {start} al {end}: {value}, {level} pide {threshold}.",
        "de": "Kundendienstqualität vom {start} bis {end}: {value}, {level} verlangt {threshold}.",
    },
    "no_after_sales": {
        "en": "No after-sales figures from {start} to {end} ({level} asks for a quality of "
        "{threshold}): record your customer messages and replies in Relance.",
        "fr": "Aucun chiffre de SAV du {start} au {end} ({level} demande une qualité de "
        "{threshold}) : enregistrez vos messages clients et vos réponses dans Relance.",
        "it": "Nessun dato post-vendita dal {start} al {end} ({level} richiede una qualità del "
        "{threshold}): registra in Relance i messaggi dei clienti e le tue risposte.",
        "es": "No hay cifras posventa del {start} al {end} ({level} pide una calidad del "
        "{threshold}): registra en Relance los mensajes de tus clientes y tus respuestas.",
        "de": "Keine Kundendienstzahlen vom {start} bis {end} ({level} verlangt eine Qualität von "
        "{threshold}): erfassen Sie Kundennachrichten und Antworten in Relance.",
    },
    "response_rate": {
        "en": "Answer every customer message that needs a reply: {value} were answered.",
        "fr": "Répondez à chaque message client qui attend une réponse : {value} ont eu une "
        "réponse.",
        "it": "Rispondi a ogni messaggio dei clienti che attende risposta: {value} hanno avuto "
        "risposta.",
        "es": "Responde a cada mensaje de cliente que espera respuesta: {value} tuvieron "
        "respuesta.",
        "de": "Beantworten Sie jede Kundennachricht, die eine Antwort braucht: {value} wurden "
        "beantwortet.",
    },
    "response_time": {
        "en": "Reply sooner: your replies took {hours} business hours on average, for a target "
        "of {target}.",
        "fr": "Répondez plus vite : vos réponses ont pris {hours} heures ouvrées en moyenne, "
        "pour un objectif de {target}.",
        "it": "Rispondi prima: le tue risposte hanno richiesto in media {hours} ore lavorative, "
        "per un obiettivo di {target}.",
        "es": "Responde antes: tus respuestas tardaron de media {hours} horas laborables, "
        "para un objetivo de {target}.",
        "de": "Antworten Sie schneller: Ihre Antworten brauchten im Schnitt {hours} "
        "Geschäftsstunden, bei einem Ziel von {target}.",
    },
    "speed_rating": {
        "en": "Customers rate the speed of your replies {value}/5: acknowledge each message the "
        "same day, even before you have the full answer.",
        "fr": "Vos clients notent la rapidité de vos réponses {value}/5 : accusez réception de "
        "chaque message le jour même, avant même d'avoir la réponse complète.",
        "it": "I clienti valutano la rapidità delle tue risposte {value}/5: conferma ogni "
        "messaggio in giornata, anche prima di avere la risposta completa.",
        "es": "Tus clientes valoran la rapidez de tus respuestas con {value}/5: confirma cada "
        "mensaje el mismo día, aunque aún no tengas la respuesta completa.",
        "de": "Kunden bewerten die Schnelligkeit Ihrer Antworten mit {value}/5: bestätigen Sie "
        "jede Nachricht am selben Tag, auch bevor Sie die vollständige Antwort haben.",
    },
    "quality_rating": {
        "en": "Customers rate the quality of your replies {value}/5: answer the whole question "
        "in one reply (tracking link, return steps, refund date).",
        "fr": "Vos clients notent la qualité de vos réponses {value}/5 : répondez à toute la "
        "question en une fois (lien de suivi, étapes du retour, date du remboursement).",
        "it": "I clienti valutano la qualità delle tue risposte {value}/5: rispondi a tutta la "
        "domanda in una volta (link di tracciamento, passi del reso, data del rimborso).",
        "es": "Tus clientes valoran la calidad de tus respuestas con {value}/5: responde a toda "
        "la pregunta de una vez (enlace de seguimiento, pasos de la devolución, fecha del "
        "reembolso).",
        "de": "Kunden bewerten die Qualität Ihrer Antworten mit {value}/5: beantworten Sie die "
        "ganze Frage in einer Antwort (Sendungsverfolgung, Rücksendeschritte, Erstattungsdatum).",
    },
    "no_reply_ratings": {
        "en": "No customer has rated your replies yet: put the rating links under your replies.",
        "fr": "Aucun client n'a encore noté vos réponses : ajoutez les liens de notation sous "
        "vos réponses.",
        "it": "Nessun cliente ha ancora valutato le tue risposte: aggiungi i link di valutazione "
        "sotto le tue risposte.",
        "es": "Ningún cliente ha valorado aún tus respuestas: añade los enlaces de valoración "
        "bajo tus respuestas.",
        "de": "Noch kein Kunde hat Ihre Antworten bewertet: fügen Sie die Bewertungslinks unter "
        "Ihren Antworten ein.",
    },
}
HOURS = {"en": "{n} hours", "fr": "{n} heures", "it": "{n} ore", "es": "{n} horas", "de": "{n} h"}


class Writer:
    """Sentences about one target level, in one language (English when it is not one of ours),
    numbers and dates written the way that language writes them."""

    def __init__(self, language: str, level: str) -> None:
        self.lang = language if language in LANGUAGES else FALLBACK_LANGUAGE
        self.level = LEVEL_NAMES.get(level, {}).get(self.lang, level)

    def _say(self, key: str, **values: object) -> str:
        return TEMPLATES[key][self.lang].format(level=self.level, **values)

    def _num(self, value: float) -> str:
        return format_decimal(value, format="#,##0.##", locale=self.lang)

    def _pct(self, value: float) -> str:
        # The locale's own pattern (72 %, 72%, 72 %), down to 0.1 %.
        return format_percent(round(value, 3), locale=self.lang, decimal_quantization=False)

    def _date(self, day: date) -> str:
        return format_date(day, format="long", locale=self.lang)

    def seniority(self, months: float | None, threshold: int, reached: date) -> str:
        return self._say(
            "seniority", value=int(months or 0), threshold=threshold, date=self._date(reached)
        )

    def rating_mean(self, mean: float | None, threshold: float, needed: int | None) -> str:
        if mean is None or needed is None:
            return self._say("rating_mean_none", threshold=self._num(threshold))
        return self._say(
            "rating_mean", value=self._num(mean), threshold=self._num(threshold), n=max(1, needed)
        )

    def positive_ratings(self, count: int, threshold: int) -> str:
        return self._say(
            "positive_ratings", value=count, threshold=threshold, missing=threshold - count
        )

    def quality(self, value: float, threshold: float, start: date, end: date) -> str:
        return self._say(
            "quality", value=self._pct(value), threshold=self._pct(threshold),
            start=self._date(start), end=self._date(end),
        )  # fmt: skip

    def no_after_sales(self, threshold: float, start: date, end: date) -> str:
        return self._say(
            "no_after_sales", threshold=self._pct(threshold),
            start=self._date(start), end=self._date(end),
        )  # fmt: skip

    def response_rate(self, rate: float) -> str:
        return self._say("response_rate", value=self._pct(rate))

    def response_time(self, mean_s: float, target_s: float) -> str:
        target = HOURS[self.lang].format(n=self._num(target_s / 3600))
        return self._say("response_time", hours=self._num(round(mean_s / 3600, 1)), target=target)

    def speed_rating(self, mean: float) -> str:
        return self._say("speed_rating", value=self._num(round(mean, 2)))

    def quality_rating(self, mean: float) -> str:
        return self._say("quality_rating", value=self._num(round(mean, 2)))

    def no_reply_ratings(self) -> str:
        return self._say("no_reply_ratings")
