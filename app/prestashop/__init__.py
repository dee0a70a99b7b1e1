"""The PrestaShop Webservice client: reconciliation, backfill and thin events."""
