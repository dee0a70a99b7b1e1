"""Shops, their keys and secrets, settings and order-state catalogue."""
