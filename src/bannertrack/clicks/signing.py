"""Signed click URLs: ``/c/{banner_id}?p={placement_id}&ts={unix}&sig={hmac}``.

A serve hands out the tracking link of the banner it chose with the placement, the time
and an HMAC-SHA256 of ``"{banner_id}:{placement_id}:{ts}"`` (16 bytes, URL-safe base64).
The key is derived from the salt key (``SaltKey.derive``), so it is never in the
database, every instance with the same salt key verifies the others' URLs, and nothing
new has to be configured. Neither the key nor a correct signature is ever logged.

A click's verdict (``verdict``):

- no ``p``, ``ts`` or ``sig``: a plain link, ``None``: counted as it always was;
- ``valid``: the signature matches and is younger than the validity: counted, and
  attributed to the placement;
- ``expired``: it matches but is older than the validity (or dated in the future beyond
  a minute of clock skew): set apart, still attributed (the placement is authentic);
- ``tampered``: it does not match (a changed banner, placement or time): set apart, not
  attributed (the placement it names is unproven);
- ``missing``: ``p`` or ``ts`` without ``sig``: set apart, not attributed.

Each is still redirected: a person behind a stale page still reaches the target.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Literal, NamedTuple
from urllib.parse import parse_qsl, urlencode

Verdict = Literal["valid", "tampered", "expired", "missing"]
SIGNED_PARAMS = frozenset({"p", "ts", "sig"})
_SKEW = 60  # seconds a ts may lie in the future (another instance's clock)
_SIG_BYTES = 16
_MAX_ID = 2**63 - 1


class Signed(NamedTuple):
    """What a click's query says of its placement: the verdict and, when the signature
    vouches for it, the placement; and the query without ``p``/``ts``/``sig``."""

    verdict: Verdict | None
    placement_id: int | None
    rest: str


class ClickSigner:
    __slots__ = ("_clock", "_key", "_mac", "_recent", "validity")

    def __init__(
        self, key: bytes, validity: float = 86_400.0, clock: Callable[[], float] = time.time
    ) -> None:
        if len(key) < 16:
            raise ValueError("the click URL key must be at least 16 bytes")
        self._key = key
        self._mac = hmac.new(key, digestmod=hashlib.sha256)  # copied per signature
        self._clock = clock
        self.validity = validity
        # A serve signs the same (banner, placement) again within the second: kept.
        self._recent: dict[tuple[int, int], tuple[int, str]] = {}

    def __repr__(self) -> str:
        return "ClickSigner(<hidden>)"

    def _sig(self, banner_id: int, placement_id: int, ts: int) -> str:
        mac = self._mac.copy()
        mac.update(f"{banner_id}:{placement_id}:{ts}".encode())
        return base64.urlsafe_b64encode(mac.digest()[:_SIG_BYTES]).rstrip(b"=").decode()

    def query(self, banner_id: int, placement_id: int) -> str:
        """The query string of a fresh click URL of this banner in this placement."""
        ts = int(self._clock())
        key = (banner_id, placement_id)
        recent = self._recent.get(key)
        if recent is not None and recent[0] == ts:
            return recent[1]
        query = f"p={placement_id}&ts={ts}&sig={self._sig(banner_id, placement_id, ts)}"
        if len(self._recent) >= 4096:
            self._recent.clear()  # bounded: pairs in use come back within a second
        self._recent[key] = (ts, query)
        return query

    def verdict(self, banner_id: int, query_string: str) -> Signed:
        """Judge a click's query (see the module docstring)."""
        if not _may_be_signed(query_string):
            return Signed(None, None, query_string)
        pairs = parse_qsl(query_string, keep_blank_values=True)
        ours = {k: v for k, v in pairs if k in SIGNED_PARAMS}
        if not ours:
            return Signed(None, None, query_string)
        rest = urlencode([(k, v) for k, v in pairs if k not in SIGNED_PARAMS])
        p, ts, sig = ours.get("p"), ours.get("ts"), ours.get("sig")
        if sig is None:
            return Signed("missing", None, rest)
        placement_id, stamp = _number(p), _number(ts)
        if placement_id is None or stamp is None:
            return Signed("tampered", None, rest)
        if not hmac.compare_digest(sig, self._sig(banner_id, placement_id, stamp)):
            return Signed("tampered", None, rest)
        age = self._clock() - stamp
        if age > self.validity or age < -_SKEW:
            return Signed("expired", placement_id, rest)
        return Signed("valid", placement_id, rest)


def _may_be_signed(query_string: str) -> bool:
    """A cheap first look, so a plain link's query is not parsed twice."""
    return "sig=" in query_string or "p=" in query_string or "ts=" in query_string


def _number(text: str | None) -> int | None:
    if text is None or not (0 < len(text) <= 19 and text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if 0 < value <= _MAX_ID else None
