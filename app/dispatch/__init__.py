"""The dispatcher: claim due e-mails with a lease, re-check, send, record."""
