"""Personal data: everything held about one address, its export and its erasure (GDPR)."""
