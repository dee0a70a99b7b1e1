"""Which URLs and addresses an outgoing webhook may reach (the SSRF rule). Pure: no I/O.

The rule is applied to the addresses a host name resolves to, not to the name: a public
name can point at 127.0.0.1, and a check of the text would miss it.
"""

import ipaddress
from urllib.parse import urlsplit

MAX_URL = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def url_problem(url: str) -> str | None:
    """Why `url` cannot be an endpoint, as far as its text says; None when it can."""
    if len(url) > MAX_URL:
        return f"at most {MAX_URL} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https"):
        return "must start with https:// (or http://)"
    if not parts.hostname:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password"
    if parts.fragment:
        return "must not have a #fragment"
    if port == 0:
        return "port 0 is not a port"
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        return "must not contain spaces or control characters"
    return None


def refused(address: IPAddress) -> str | None:
    """Why an address is not reachable without RELANCE_WEBHOOK_ALLOW_PRIVATE; None: public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "reserved"
    return None


def first_allowed(addresses: list[str], allow_private: bool) -> tuple[str | None, str | None]:
    """The address to connect to, or why none will do (one refused address refuses all: a
    name that also resolves to a private address is not trusted with the others)."""
    if not addresses:
        return None, "does not resolve"
    parsed = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
    if not allow_private:
        for address in parsed:
            why = refused(address)
            if why is not None:
                return None, f"resolves to a {why} address ({address})"
    return str(parsed[0]), None
