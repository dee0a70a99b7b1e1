"""Merchant e-mail templates: storage, the sandbox they render in, preview and test send."""
