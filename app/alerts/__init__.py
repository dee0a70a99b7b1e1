"""Alerts to the merchant: a low review arrived, sending is paused. Sent from a durable queue."""
