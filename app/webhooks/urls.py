"""Webhook URL rules, and the SSRF guard.

A URL is absolute `https://` (`http://` too in development), with a host, no credentials and
no fragment. In production (unless WEBHOOK_ALLOW_PRIVATE=true) its host must resolve only to
public addresses: checked when the endpoint is created and again before every delivery, and
the delivery then connects to the address that was checked (never resolving the name again,
so a DNS answer that changes between check and use cannot point it inward).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int


def parse_url(raw: object, *, allow_http: bool) -> Target:
    if not isinstance(raw, str) or not raw.strip():
        raise UrlRefused("URL is required")
    url = raw.strip()
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"At most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UrlRefused("Must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("Must be an absolute URL") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_http else ("https",)
    if scheme not in allowed:
        message = "Must be an https:// or http:// URL" if allow_http else "Must be an https:// URL"
        raise UrlRefused(message)
    if not parts.hostname:
        raise UrlRefused("Must be an absolute URL with a host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("Must not contain credentials")
    if parts.fragment:
        raise UrlRefused("Must not contain a fragment")
    default_port = 443 if scheme == "https" else 80
    return Target(url=url, scheme=scheme, host=parts.hostname, port=port or default_port)


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local, shared (CGNAT),
    reserved, multicast or unspecified (IPv4-mapped IPv6 judged as the IPv4 inside)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def resolve_public(target: Target) -> list[str]:
    """Every address the host resolves to, all public; UrlRefused otherwise."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM), timeout=5
            )
        except (OSError, TimeoutError, UnicodeError):
            raise UrlRefused("The host does not resolve") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise UrlRefused("The host does not resolve")
    for address in addresses:
        if not is_public(address):
            raise UrlRefused("The host resolves to a private, loopback or reserved address")
    return [str(a) for a in addresses]
