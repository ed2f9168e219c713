"""The key that seals the day's visitor salt, so that a copy of the database cannot use it.

Every instance must hash a visitor with the same salt, so the day's salt is shared
through the database (``visitor_salts``). Stored in the clear it would sit next to the
visitor keys it made, and a copy of the database would be enough to test guesses of
(address, user agent) against them. So the database holds it *sealed*::

    sealed = salt XOR HMAC-SHA256(key, "bannertrack visitor salt " + day)

under a key that never enters the database: ``BANNERTRACK_SALT_KEY`` or, when that is
empty, the key file ``BANNERTRACK_SALT_KEY_FILE``, created with mode 0600 on first start.
Why this shape:

- A copy of the database (a file, a dump, a backup) without the key holds 32 bytes that
  are indistinguishable from random: the salt stays unknown, and so do the addresses.
- Deleting a day's row still destroys that salt for good: the salt is random, the key
  only masks it, so the key alone cannot recreate it.
- Every instance with the same key unseals the same salt, so visitor keys still match
  across instances; the cost is one HMAC per day per process, nothing per click.
- ``key_check`` (an HMAC of the day under the key, 8 bytes) lets an instance whose key
  differs from the one that sealed the row say so in the log, instead of silently
  computing visitor keys nobody else computes.

Neither the key nor the salt is ever logged; ``SaltKey`` does not show its bytes in a repr.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path

from bannertrack.errors import BannertrackError
from bannertrack.models import SealedSalt

log = logging.getLogger("bannertrack.clicks.privacy")

SALT_BYTES = 32
MIN_KEY_CHARS = 32


class SaltKeyError(BannertrackError):
    """The salt key is missing, too short or its file cannot be read or created."""

    code = "salt_key"


class SaltKey:
    """The secret that seals and unseals daily salts (an HMAC-SHA256 key)."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_KEY_CHARS:
            raise SaltKeyError(f"the salt key must be at least {MIN_KEY_CHARS} characters long")
        self._secret = secret

    def __repr__(self) -> str:
        return "SaltKey(<hidden>)"

    def _mac(self, label: bytes, day: date) -> bytes:
        return hmac.new(self._secret, label + day.isoformat().encode(), hashlib.sha256).digest()

    def seal(self, salt: bytes, day: date) -> bytes:
        """XOR with a pad only this key makes for this day; sealing twice unseals."""
        pad = self._mac(b"bannertrack visitor salt ", day)
        return bytes(a ^ b for a, b in zip(salt, pad, strict=True))

    unseal = seal

    def check(self, day: date) -> bytes:
        return self._mac(b"bannertrack key check ", day)[:8]

    def derive(self, purpose: bytes) -> bytes:
        """A key of its own for ``purpose`` (the click URLs' signatures): every instance
        with this key derives the same one, and neither reveals the other."""
        return hmac.new(
            self._secret, b"bannertrack derived key " + purpose, hashlib.sha256
        ).digest()


def new_key_text() -> str:
    return secrets.token_hex(32)


def load_salt_key(key: str, key_file: str) -> SaltKey:
    """The key from ``BANNERTRACK_SALT_KEY``, else from the key file (created if absent)."""
    if key:
        return SaltKey(key.encode())
    return SaltKey(read_or_create_key_file(Path(key_file).expanduser()).encode())


def read_or_create_key_file(path: Path) -> str:
    """The key file's text; on first start a fresh random key, written with mode 0600.

    Creation is atomic (a private temporary file linked into place), so workers or
    instances starting together on one host all end up with the one key that won.
    """
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".salt-key-")  # mode 0600
        try:
            with os.fdopen(fd, "w") as f:
                f.write(new_key_text() + "\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
                log.info("created the salt key file %s (mode 0600)", path)
            except FileExistsError:
                pass  # another process won the race: use its key
        finally:
            os.unlink(tmp)
        return _read(path)
    except OSError as exc:
        raise SaltKeyError(
            f"cannot create the salt key file {path} ({exc.strerror}); "
            "set BANNERTRACK_SALT_KEY or BANNERTRACK_SALT_KEY_FILE"
        ) from None


def _read(path: Path) -> str:
    try:
        text = path.read_text().strip()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SaltKeyError(f"cannot read the salt key file {path} ({exc.strerror})") from None
    if mode & 0o077:
        log.warning("the salt key file %s is readable by other users: chmod 600 it", path)
    if len(text) < MIN_KEY_CHARS:
        raise SaltKeyError(f"the salt key file {path} holds fewer than {MIN_KEY_CHARS} characters")
    return text


SealedSaltStore = Callable[[date, SealedSalt], Awaitable[SealedSalt]]


def sealed_salt_loader(store: SealedSaltStore, key: SaltKey) -> Callable[[date], Awaitable[bytes]]:
    """A ``VisitorHasher`` salt loader: offer a freshly sealed salt, unseal whichever won.

    ``store(day, offer)`` keeps the first offer for a day (from any instance) and returns
    the stored one (``SqlRepository.sealed_salt``).
    """

    async def load(day: date) -> bytes:
        check = key.check(day)
        offer = SealedSalt(key.seal(secrets.token_bytes(SALT_BYTES), day), check)
        stored = await store(day, offer)
        if not hmac.compare_digest(stored.key_check, check):
            # Still count the click: only repeat detection across instances suffers.
            log.error(
                "the visitor salt of %s was sealed by an instance with another salt key; "
                "visitor keys here will not match theirs: give every instance the same "
                "BANNERTRACK_SALT_KEY (or key file)",
                day,
            )
        return key.unseal(stored.sealed, day)

    return load
