"""Banner URLs: what may be stored, and the ``Location`` a click is sent to.

A target is stored as a URI that can be sent as a ``Location`` header as it is: absolute
http(s), no control character (CR, LF, NUL, the other C0 and C1 codes, DEL) and no
whitespace, which are refused; non-ASCII is converted as RFC 3987 maps an IRI to a URI
(the host through IDNA, UTS #46; everything else percent-encoded as UTF-8). ASCII that
is already there is kept as the admin wrote it, so an existing URL never changes.

Rows stored before these rules are checked again when a click needs them: one that can
be converted is, one that cannot (a control character) raises ``UnusableTargetError``
and the click is not counted.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode, urlsplit, urlunsplit

import idna

from bannertrack.errors import ConflictError, InvalidInputError
from bannertrack.models import Banner

MAX_URL = 2048  # the database column
# C0 controls, DEL, C1 controls; and any whitespace (Unicode too: U+2028 and friends).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPACE = re.compile(r"\s")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
# ASCII a URI cannot hold (RFC 3986 allows unreserved, reserved and "%" + two hex digits).
_NOT_URI = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]|%(?![0-9A-Fa-f]{2})")
# Anything outside printable ASCII: a stored target without it needs no work per click.
_NEEDS_WORK = re.compile(r"[^\x21-\x7e]")
# RFC 3986 reg-name (no percent-encoding: a host is plain ASCII or goes through IDNA).
_REG_NAME = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=]+")
_USERINFO = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:%]*")
# ":" and 0-65535 (RFC 3986 allows an empty port; more than five digits is not one).
_PORT = re.compile(r":(?:\d{0,4}|[0-5]\d{4}|6[0-4]\d{3}|65[0-4]\d{2}|655[0-2]\d|6553[0-5])")


class UnusableTargetError(ConflictError):
    """A stored target that cannot be a Location (a row from before the rules)."""

    code = "invalid_target"


def to_uri(url: str, field: str = "url") -> str:
    """``url`` as a URI fit for a Location header; ``InvalidInputError`` if it cannot be."""
    if _CONTROL.search(url):
        raise InvalidInputError(
            f"{field} must not contain control characters (CR, LF, NUL, tab, ...)"
        )
    if _SPACE.search(url):
        raise InvalidInputError(f"{field} must not contain spaces")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise InvalidInputError(f"{field} is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InvalidInputError(f"{field} must be an absolute http(s) URL")
    netloc = _authority(parts.netloc, field)
    if url.isascii():
        _check_uri_characters(url, field)
        return url  # checked; an ASCII URL is stored exactly as written
    uri = urlunsplit(
        (
            parts.scheme,
            netloc,
            _percent(parts.path),
            _percent(parts.query),
            _percent(parts.fragment),
        )
    )
    # urlunsplit drops an empty query or fragment delimiter; keep the URL as written.
    if url.endswith("?") and not uri.endswith("?"):
        uri += "?"
    elif url.endswith("#") and not uri.endswith("#"):
        uri += "#"
    _check_uri_characters(uri, field)
    if len(uri) > MAX_URL:
        raise InvalidInputError(f"{field} is longer than {MAX_URL} characters as a URI")
    return uri


def _check_uri_characters(url: str, field: str) -> None:
    """ASCII that RFC 3986 does not allow in a URI (``"<>\\^`{|}``, a stray ``%``) is refused.

    Such a URL is no URI, so no client generated from the OpenAPI document (which says
    ``format: uri``) would send one, and a browser may mangle it in a ``Location``.
    """
    bad = _NOT_URI.search(url)
    if bad is not None:
        raise InvalidInputError(
            f"{field} has {bad.group()!r}, which a URL cannot hold: percent-encode it"
        )


def _percent(text: str) -> str:
    return _NON_ASCII.sub(lambda m: quote(m.group(), safe=""), text)


def _authority(netloc: str, field: str) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    if at and not _USERINFO.fullmatch(_percent(userinfo)):
        raise InvalidInputError(f"{field} has invalid characters before '@'")
    if hostport.startswith("["):
        literal, _bracket, port = hostport[1:].partition("]")
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise InvalidInputError(f"{field} has an invalid IPv6 host") from None
        host = f"[{literal}]"
    else:
        host, _colon, port = hostport.partition(":")
        port = f":{port}" if _colon else ""
        host = _host(host, field)
    if port and not _PORT.fullmatch(port):
        raise InvalidInputError(f"{field} has an invalid port")
    return f"{_percent(userinfo)}@{host}{port}" if at else f"{host}{port}"


def _host(host: str, field: str) -> str:
    if not host:
        raise InvalidInputError(f"{field} must name a host")
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise InvalidInputError(f"{field} has a host IDNA cannot encode: {exc}") from None
    if not _REG_NAME.fullmatch(host):
        raise InvalidInputError(f"{field} has invalid characters in its host")
    return host


def redirect_location(banner: Banner, query_string: str) -> str:
    """The Location of a click: the stored target, plus the request's query if forwarded.

    A parameter the target already has keeps the target's value; a target with a
    fragment is used as stored (appending after ``#`` would land in the fragment).
    ``query_string`` is the raw request query; it is decoded and re-encoded, so nothing
    from the request reaches the header unescaped.
    """
    target = banner.target_url
    if _NEEDS_WORK.search(target):
        try:
            target = to_uri(target, "target_url")
        except InvalidInputError:
            raise UnusableTargetError(
                f"banner {banner.id} has a target_url that cannot be a redirect; "
                "an admin must update it"
            ) from None
    if not banner.forward_query or not query_string:
        return target
    parts = urlsplit(target)
    if parts.fragment or target.endswith("#"):
        return target
    have = {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    extra = [(k, v) for k, v in parse_qsl(query_string, keep_blank_values=True) if k not in have]
    if not extra:
        return target
    sep = "" if target.endswith(("?", "&")) else ("&" if parts.query else "?")
    return f"{target}{sep}{urlencode(extra)}"


# The Location up to its click id, by (location, param): on the link, rewriting the same
# target every click cost 1.7 us, a third of what making the id did then (docs/benchmarks.md).
# Bounded, and emptied when full: a banner that forwards the query has a location per query.
_PREFIXES: dict[tuple[str, str], str] = {}
_MAX_PREFIXES = 1024
_MAX_PREFIXED = 512  # longer locations (long forwarded queries) are rewritten each time


def with_click_id(location: str, param: str, click_id: str) -> str:
    """``location`` with ``param=click_id`` as its last query parameter.

    Any ``param`` already there (from the target, or forwarded from the request: a
    visitor could send one) is dropped, so the only click id a site receives is the one
    stored with the click. It goes before a fragment, not into it. ``param`` and
    ``click_id`` are URL-safe by construction (``ClickIdParam``,
    ``conversions.click_ids.new_click_id``).
    """
    prefix = _PREFIXES.get((location, param))
    if prefix is None:
        if "#" in location:  # the id goes before the fragment: no prefix to keep
            return _rewritten(location, param, click_id)
        prefix = _rewritten(location, param, "")
        if len(location) <= _MAX_PREFIXED:
            if len(_PREFIXES) >= _MAX_PREFIXES:
                _PREFIXES.clear()
            _PREFIXES[location, param] = prefix
    return prefix + click_id


def _rewritten(location: str, param: str, click_id: str) -> str:
    base, hash_, fragment = location.partition("#")
    path, _q, query = base.partition("?")
    if _plain_query(query, param):  # no part to drop or decode: the link's usual case
        sep = "&" if query else ""
        return f"{path}?{query}{sep}{param}={click_id}{hash_}{fragment}"
    kept = [p for p in query.split("&") if p and unquote_plus(p.partition("=")[0]) != param]
    kept.append(f"{param}={click_id}")
    return f"{path}?{'&'.join(kept)}{hash_}{fragment}"


def _plain_query(query: str, param: str) -> bool:
    """Whether ``_rewritten`` may append to ``query`` as it is: no empty part to drop,
    nothing percent- or plus-encoded, and ``param`` nowhere in it (so no key equals it)."""
    if not query:
        return True
    return (
        param not in query
        and "%" not in query
        and "+" not in query
        and "&&" not in query
        and query[0] != "&"
        and query[-1] != "&"
    )
