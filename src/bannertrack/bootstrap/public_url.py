"""The one place the service decides how it names itself in an absolute URL.

Every absolute URL the service writes (the dashboard's snippets and links, a placement's
click URL) goes through ``PublicUrls.url``, so a deployment behind a proxy is set right
once, here:

1. ``BANNERTRACK_PUBLIC_URL`` (``https://ads.example.com``) wins whenever it is set:
   nothing a request carries can change it. It has no path: the dashboard's own links
   and the API are served from the root, so the service is mounted at a host's root.
2. Otherwise the request's own scheme and ``Host`` header, except that a peer listed in
   ``BANNERTRACK_TRUSTED_PROXIES`` may name them with ``X-Forwarded-Proto`` and
   ``X-Forwarded-Host`` (the proxy terminated TLS, so the app saw plain http). From any
   other peer those headers are ignored: anyone could send them, and a snippet copied from
   the dashboard must not point at a host an attacker chose.

A host that is not a plausible ``host[:port]`` (spaces, slashes, quotes, ``@``) is never
written into a URL; the server's own address stands in for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bannertrack.clicks.privacy import IPNetwork, is_trusted_peer
from bannertrack.config import HOST_PATTERN as _HOST
from bannertrack.config import PUBLIC_SCHEMES as _SCHEMES
from bannertrack.config import check_public_url as check_public_url  # checked with the settings

_DEFAULT_PORTS = {"http": 80, "https": 443}


_WANTED = frozenset({b"host", b"x-forwarded-proto", b"x-forwarded-host"})
_MAX_MEMO = 256


@dataclass(frozen=True, slots=True)
class PublicUrls:
    """Absolute URLs of this service as a visitor's browser must see them."""

    public_url: str  # checked by ``check_public_url``; "" to derive from each request
    trusted_proxies: tuple[IPNetwork, ...]
    # The base for the request facts it depends on: every placement serve writes one,
    # and the same few hosts come back all day. The key holds no visitor's address, only
    # whether the peer is a trusted proxy; bounded, as a client chooses its Host header.
    _memo: dict[tuple[object, ...], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def base(self, scope: Mapping[str, Any]) -> str:
        """``scheme://host[:port]`` for the request of an ASGI ``scope``."""
        if self.public_url:
            return self.public_url
        headers = _headers(scope, _WANTED)
        forwarded = b"x-forwarded-proto" in headers or b"x-forwarded-host" in headers
        key = (
            scope.get("scheme"),
            scope.get("server"),
            headers.get(b"host"),
            headers.get(b"x-forwarded-proto"),
            headers.get(b"x-forwarded-host"),
            forwarded and self._from_trusted_proxy(scope),
        )
        found = self._memo.get(key)
        if found is None:
            found = self._base(scope, headers, bool(key[-1]))
            if len(self._memo) >= _MAX_MEMO:
                self._memo.clear()
            self._memo[key] = found
        return found

    def _base(self, scope: Mapping[str, Any], headers: dict[bytes, str], proxied: bool) -> str:
        scheme = str(scope.get("scheme") or "http")
        host = _valid_host(headers.get(b"host"))
        if proxied:
            forwarded = _first(headers.get(b"x-forwarded-proto")).lower()
            if forwarded in _SCHEMES:
                scheme = forwarded
            host = _valid_host(_first(headers.get(b"x-forwarded-host"))) or host
        if scheme not in _SCHEMES:  # "ws" and friends never name a page
            scheme = "https" if scheme.endswith("s") else "http"
        return f"{scheme}://{host or _server_host(scope, scheme)}"

    def url(self, scope: Mapping[str, Any], path: str) -> str:
        """The absolute URL of ``path`` (which starts with ``/``)."""
        return self.base(scope) + path

    def _from_trusted_proxy(self, scope: Mapping[str, Any]) -> bool:
        if not self.trusted_proxies:
            return False
        client = scope.get("client")
        if not client:
            return False
        return is_trusted_peer(str(client[0]), self.trusted_proxies)


def _headers(scope: Mapping[str, Any], wanted: Iterable[bytes]) -> dict[bytes, str]:
    """The first value of each wanted header (names in lower case, as ASGI gives them)."""
    names = frozenset(wanted)
    out: dict[bytes, str] = {}
    for name, value in scope.get("headers", ()):
        if name in names and name not in out:
            out[name] = value.decode("latin-1")
    return out


def _first(value: str | None) -> str:
    """The first entry of a comma-separated header: the proxy nearest the client wrote it."""
    return (value or "").split(",", 1)[0].strip()


def _valid_host(value: str | None) -> str | None:
    value = (value or "").strip()
    return value.lower() if value and _HOST.match(value) else None


def _server_host(scope: Mapping[str, Any], scheme: str) -> str:
    server = scope.get("server")
    if not server:
        return "localhost"
    host, port = str(server[0]), server[1]
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return host
    return f"{host}:{port}"
