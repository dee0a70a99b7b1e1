"""Relance: review requests at the right moment for PrestaShop shops."""
