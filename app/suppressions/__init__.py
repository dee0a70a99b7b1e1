"""Addresses never written to again: unsubscribed, bounced, complained, or set by the merchant."""
