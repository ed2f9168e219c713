"""Where a click came from, derived while the request is in hand (docs/counting.md).

The raw request facts are reduced here to a few coarse values that breakdowns count:

- ``country``: ISO 3166-1 alpha-2 of the client address, from the offline RIR data that
  ships inside the ``iptocc`` wheel (no download, no licence key, ~0.2 µs a lookup). The
  address itself goes no further than this call.
- ``device`` (desktop / mobile / tablet / bot / other), ``browser`` and ``os`` families
  from the user agent, parsed by ``ua-parser`` (its builtin rules, with the Rust
  resolver of ``ua-parser-rs``). Parsing costs ~10 µs, so verdicts are cached per agent
  in a bounded LRU: real traffic repeats a few thousand agents.
- ``referrer_host``: the referrer reduced to its lower-case host (no path, no query, so
  no search terms or session ids are kept).
- ``utm_source`` / ``utm_medium`` / ``utm_campaign``: from the tracking link's own query
  string, cut to ``MAX_VALUE`` characters.

Every value is bounded in length, so no client can grow a rollup row beyond it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

import iptocc
from ua_parser import parse as parse_agent

from bannertrack.models import ClickFacts

# Longest value kept for any dimension (utm values, referrer hosts, browser names).
MAX_VALUE = 100
_UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign")
_DESKTOP_OS = frozenset(
    {"Windows", "Mac OS X", "Linux", "Ubuntu", "Fedora", "Chrome OS", "FreeBSD", "OpenBSD"}
)
_MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "KaiOS", "BlackBerry OS"})
_TABLETS = ("ipad", "tablet", "kindle", "nexus 7", "nexus 9", "nexus 10", "sm-t", "tab")


class AgentFacts(NamedTuple):
    device: str | None
    browser: str | None
    os: str | None


def country_of(address: str | None) -> str | None:
    """The country of an address, ``None`` for private, reserved or malformed ones."""
    if not address:
        return None
    address = address.strip()
    if address[:7].lower() == "::ffff:" and "." in address:
        address = address[7:]  # an IPv4 client on a dual-stack socket
    try:
        code = iptocc.country_code(address)
    except ValueError:
        return None
    return code.upper() if code else None


@lru_cache(maxsize=4096)
def agent_facts(user_agent: str | None) -> AgentFacts:
    """Device class, browser and OS of a user agent; cached, as agents repeat a lot."""
    if not user_agent:
        return AgentFacts(None, None, None)
    parsed = parse_agent(user_agent)
    browser = _family(parsed.user_agent.family if parsed.user_agent else None)
    os = _family(parsed.os.family if parsed.os else None)
    device_family = parsed.device.family if parsed.device else None
    return AgentFacts(_device_class(user_agent, device_family, os), browser, os)


def _family(name: str | None) -> str | None:
    if not name or name == "Other":
        return None
    return name[:MAX_VALUE]


def _device_class(user_agent: str, device_family: str | None, os: str | None) -> str:
    """desktop / mobile / tablet / bot / other, from the parsed families and the UA.

    ua-parser names devices, not their class; the class follows the usual rules: a
    "Spider" device is a bot, tablets name themselves (or are Android without "Mobile"),
    and "Mobi" in the agent means a phone (what MDN recommends for browser sniffing).
    """
    family = (device_family or "").lower()
    if family == "spider":
        return "bot"
    if any(t in family for t in _TABLETS) or (os == "Android" and "Mobile" not in user_agent):
        return "tablet"
    if "Mobi" in user_agent or os in _MOBILE_OS:
        return "mobile"
    if os in _DESKTOP_OS:
        return "desktop"
    return "other"


def referrer_host(referrer: str | None) -> str | None:
    """The referrer's host, lower case and without ``www.``; ``None`` if it has none."""
    if not referrer:
        return None
    try:
        host = urlsplit(referrer.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.removeprefix("www.")
    return host[:MAX_VALUE] or None


def utm_values(query_string: str | None) -> tuple[str | None, str | None, str | None]:
    """utm_source, utm_medium and utm_campaign of a query string (the first of each)."""
    found: dict[str, str] = {}
    if query_string and "utm_" in query_string:
        for key, value in parse_qsl(query_string, keep_blank_values=False):
            if key in _UTM_KEYS and key not in found:
                cleaned = value.strip()[:MAX_VALUE]
                if cleaned:
                    found[key] = cleaned
    return found.get("utm_source"), found.get("utm_medium"), found.get("utm_campaign")


def derive(
    address: str | None,
    user_agent: str | None,
    referrer: str | None,
    query_string: str | None,
) -> ClickFacts:
    """Every breakdown fact of one click; the address is used and then dropped."""
    agent = agent_facts(user_agent)
    source, medium, campaign = utm_values(query_string)
    return ClickFacts(
        country=country_of(address),
        device=agent.device,
        browser=agent.browser,
        os=agent.os,
        referrer_host=referrer_host(referrer),
        utm_source=source,
        utm_medium=medium,
        utm_campaign=campaign,
    )
