"""E-mail: templates, MIME messages and transports."""
