"""The address-guessing attack of issue 12, run over everything a database stores.

It reads every row of every table (whatever the schema: an old one with ``ip_prefix`` and
plain salts, or the current one), and tries what the issue did: every stored 32-byte
value is a candidate salt; every stored value that names a narrow IPv4 network (a /24 or
narrower prefix) in a click's row gives that click's candidate addresses; a guess is
right when ``visitor_key(salt, address, user_agent)`` equals the click's stored visitor
key. With the old schema that is 256 guesses per click.
"""

from __future__ import annotations

import contextlib
import ipaddress
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bannertrack.clicks.privacy import visitor_key
from tests.support.services import _asyncpg_dsn, _in_thread

Rows = dict[str, list[dict[str, Any]]]
_MAX_GUESSES_PER_CLICK = 256  # a /24, as in the issue


def read_sqlite(path: Path) -> Rows:
    """Every row of every table of a SQLite file (its WAL included, as SQLite reads it)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: [dict(r) for r in conn.execute(f'SELECT * FROM "{n}"')] for n in names}
    finally:
        conn.close()


def read_postgres(url: str) -> Rows:
    """Every row of every table in the public schema."""
    assert make_url(url).get_backend_name() == "postgresql"

    async def go() -> Rows:
        import asyncpg

        _, kw = _asyncpg_dsn(url)
        conn = await asyncpg.connect(**kw)
        try:
            names = await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
            out: Rows = {}
            for (name,) in names:
                out[name] = [dict(r) for r in await conn.fetch(f'SELECT * FROM "{name}"')]
            return out
        finally:
            await conn.close()

    return _in_thread(go)  # type: ignore[no-any-return]


def _values(rows: Rows) -> Iterable[Any]:
    for table in rows.values():
        for row in table:
            yield from row.values()


def salt_candidates(rows: Rows) -> list[bytes]:
    """Every stored value that could be a salt: 32 raw bytes, or 64 hex characters."""
    found: set[bytes] = set()
    for v in _values(rows):
        if isinstance(v, bytes | bytearray | memoryview) and len(bytes(v)) == 32:
            found.add(bytes(v))
        elif isinstance(v, str) and len(v) == 64:
            with contextlib.suppress(ValueError):
                found.add(bytes.fromhex(v))
    return sorted(found)


def narrow_networks(row: dict[str, Any]) -> list[ipaddress.IPv4Network]:
    """Values of one row that name an IPv4 network of at most 256 addresses."""
    nets = []
    for v in row.values():
        if not isinstance(v, str) or "/" not in v:
            continue
        try:
            net = ipaddress.ip_network(v.strip(), strict=False)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network) and net.num_addresses <= _MAX_GUESSES_PER_CLICK:
            nets.append(net)
    return nets


def clicks_with_keys(rows: Rows) -> list[dict[str, Any]]:
    """Rows of any table that carry a visitor key and a user agent column."""
    return [
        row
        for table in rows.values()
        for row in table
        if row.get("visitor") and "user_agent" in row
    ]


def recover_ipv4(rows: Rows) -> set[str]:
    """The IPv4 addresses the attack turns back from stored clicks."""
    salts = salt_candidates(rows)
    recovered: set[str] = set()
    for row in clicks_with_keys(rows):
        for net in narrow_networks(row):
            for ip in net:
                for salt in salts:
                    if visitor_key(salt, ip.packed, row["user_agent"]) == row["visitor"]:
                        recovered.add(str(ip))
    return recovered


def salts_that_work(rows: Rows, sent: Iterable[tuple[str, str]]) -> list[bytes]:
    """Stored values that reproduce a stored visitor key for an (address, agent) sent.

    Stronger than the attack: it is told the true addresses. A salt stored in the clear
    shows up here whatever else is stored (with only the country left to narrow the
    guess, a clear salt would still cost only minutes per click).
    """
    keys = {row["visitor"] for row in clicks_with_keys(rows)}
    pairs = [(ipaddress.ip_address(ip).packed, ua) for ip, ua in sent]
    return [s for s in salt_candidates(rows) if any(visitor_key(s, p, u) in keys for p, u in pairs)]
