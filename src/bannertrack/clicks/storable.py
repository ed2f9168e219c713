"""Text a click carries into the database must be text every backend can store.

PostgreSQL ``text`` cannot hold NUL, and no backend can hold a lone UTF-16 surrogate
(it has no UTF-8 encoding). One such value used to fail the whole group-commit batch it
rode in, so the rule is applied before a click is queued: values from request headers
are cleaned (a browser never sends these characters; whatever did loses them), values
from a JSON body are refused with 400 (the caller can fix its request).
"""

from __future__ import annotations

import re

from bannertrack.errors import InvalidInputError

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: str | None) -> str | None:
    """``value`` without the characters no database column can hold."""
    if value is None or not _UNSTORABLE.search(value):
        return value
    return _UNSTORABLE.sub("", value)


def require_storable(**fields: str | None) -> None:
    """Refuse (400) the first field holding a character no database column can hold."""
    for name, value in fields.items():
        if value is not None and _UNSTORABLE.search(value):
            raise InvalidInputError(f"{name} holds a NUL or other character that cannot be stored")
