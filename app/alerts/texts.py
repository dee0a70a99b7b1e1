# ruff: noqa: RUF001 (typographic apostrophes, as a native speaker writes them)
"""The alerts' words, in the shop's language (the merchant reads them)."""

LOW_REVIEW = {
    "en": ("{shop}: a {rating}-star review on order {order}",
           "A customer gave {rating} star(s) to order {order}.\n\nComment:\n{comment}\n\n"
           "Answer it publicly, or publish or reject it: PATCH /api/v1/shops/{shop_id}/reviews/"
           "{review_id} with {{\"reply\": \"…\"}} or {{\"status\": \"…\"}}.\n"),
    "fr": ("{shop} : un avis à {rating} étoile(s) sur la commande {order}",
           "Un client a donné {rating} étoile(s) à la commande {order}.\n\nCommentaire :\n"
           "{comment}\n\nRépondez-lui publiquement, ou publiez ou refusez l’avis : PATCH "
           "/api/v1/shops/{shop_id}/reviews/{review_id} avec {{\"reply\": \"…\"}} ou "
           "{{\"status\": \"…\"}}.\n"),
    "de": ("{shop}: eine {rating}-Sterne-Bewertung zu Bestellung {order}",
           "Ein Kunde hat Bestellung {order} mit {rating} Stern(en) bewertet.\n\nKommentar:\n"
           "{comment}\n\nÖffentlich antworten, veröffentlichen oder ablehnen: PATCH "
           "/api/v1/shops/{shop_id}/reviews/{review_id} mit {{\"reply\": \"…\"}} oder "
           "{{\"status\": \"…\"}}.\n"),
    "it": ("{shop}: una recensione da {rating} stelle sull’ordine {order}",
           "Un cliente ha dato {rating} stella/e all’ordine {order}.\n\nCommento:\n{comment}\n\n"
           "Rispondi pubblicamente, oppure pubblica o rifiuta la recensione: PATCH "
           "/api/v1/shops/{shop_id}/reviews/{review_id} con {{\"reply\": \"…\"}} o "
           "{{\"status\": \"…\"}}.\n"),
    "es": ("{shop}: una opinión de {rating} estrella(s) sobre el pedido {order}",
           "Un cliente ha dado {rating} estrella(s) al pedido {order}.\n\nComentario:\n"
           "{comment}\n\nRespóndele públicamente, o publica o rechaza la opinión: PATCH "
           "/api/v1/shops/{shop_id}/reviews/{review_id} con {{\"reply\": \"…\"}} o "
           "{{\"status\": \"…\"}}.\n"),
}  # fmt: skip

SENDING_PAUSED = {
    "en": ("{shop}: review requests are paused",
           "The mail server refused an e-mail for good, so sending is paused (nothing is lost):\n"
           "{reason}\n\nFix the cause, then POST /api/v1/shops/{shop_id}/sending/resume.\n"),
    "fr": ("{shop} : les demandes d’avis sont en pause",
           "Le serveur d’e-mails a refusé un message définitivement : l’envoi est en pause "
           "(rien n’est perdu) :\n{reason}\n\nCorrigez la cause, puis POST "
           "/api/v1/shops/{shop_id}/sending/resume.\n"),
    "de": ("{shop}: Bewertungsanfragen sind pausiert",
           "Der Mailserver hat eine E-Mail endgültig abgelehnt, der Versand ist pausiert "
           "(nichts geht verloren):\n{reason}\n\nBeheben Sie die Ursache, dann POST "
           "/api/v1/shops/{shop_id}/sending/resume.\n"),
    "it": ("{shop}: le richieste di recensione sono in pausa",
           "Il server di posta ha rifiutato definitivamente un’e-mail: l’invio è in pausa "
           "(nulla va perso):\n{reason}\n\nRisolvi la causa, poi POST "
           "/api/v1/shops/{shop_id}/sending/resume.\n"),
    "es": ("{shop}: las solicitudes de opinión están en pausa",
           "El servidor de correo ha rechazado un mensaje definitivamente: el envío está en "
           "pausa (no se pierde nada):\n{reason}\n\nCorrige la causa y luego POST "
           "/api/v1/shops/{shop_id}/sending/resume.\n"),
}  # fmt: skip
