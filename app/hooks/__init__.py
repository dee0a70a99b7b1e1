"""Outgoing webhooks: the merchant's endpoints, signed events to them on a durable leased queue."""
