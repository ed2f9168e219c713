"""Issue 12, item 6: raw IPv4 addresses cannot be recovered from what is stored.

The attack (``tests/support/ip_guessing.py``) reads every row of every table and tries
the issue's 256 guesses per click. It first runs over data stored the old way (plain
salt and /24 prefix, schema 0003), where it must recover every address; then over the
same database migrated to head, and over databases written by real server processes
(SQLite and PostgreSQL), where it must recover none.
"""

from __future__ import annotations

import ipaddress
import random
import secrets
import stat
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from tests.conftest import ADMIN_TOKEN
from tests.support.banners import make_banner_sync
from tests.support.ip_guessing import (
    Rows,
    read_postgres,
    read_sqlite,
    recover_ipv4,
    salts_that_work,
)
from tests.support.server import ServerProcess
from tests.support.services import PostgresFactory

from bannertrack.clicks.privacy import visitor_key
from bannertrack.clicks.salt_key import load_salt_key
from bannertrack.db.engine import create_engine
from bannertrack.db.migrate import upgrade
from bannertrack.db.repository import SqlRepository
from bannertrack.models import ClickIn

AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
)


def visitors(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (IPv4 address, user agent) pairs in distinct /24 networks."""
    rng = random.Random(seed)
    nets = rng.sample(range(1 << 16), n)
    return [
        (
            str(ipaddress.IPv4Address((100 << 24) + (net << 8) + rng.randrange(1, 255))),
            AGENTS[i % 3],
        )
        for i, net in enumerate(nets)
    ]


def prefix24(ip: str) -> str:
    return str(ipaddress.ip_network(f"{ip}/24", strict=False))


def read_all(url: str) -> Rows:
    if make_url(url).get_backend_name() == "sqlite":
        return read_sqlite(Path(make_url(url).database or ""))
    return read_postgres(url)


async def test_attack_works_on_the_old_schema_and_recovers_nothing_after_0004(
    unmigrated_url: str,
) -> None:
    """Negative control and migration test: old rows with a plain salt and prefixes give
    every address away; after upgrading, the same rows give none, and keep their counts."""
    sent = visitors(20, seed=12)
    salt = secrets.token_bytes(32)
    now = datetime.now(UTC)
    engine = create_engine(unmigrated_url)
    repo: SqlRepository | None = None
    try:
        await upgrade(engine, "0003")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO banners (name, image_url, target_url, active, forward_query, "
                    "created_at, updated_at) VALUES ('old', 'https://a.example/i', "
                    "'https://a.example', true, true, :t, :t)"
                ),
                {"t": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO banner_totals (banner_id, total_clicks, valid_clicks) "
                    "VALUES (1, 20, 20)"
                )
            )
            await conn.execute(
                text("INSERT INTO visitor_salts (day, salt) VALUES (:d, :s)"),
                {"d": now.date(), "s": salt},
            )
            for ip, agent in sent:  # what the old click path stored
                await conn.execute(
                    text(
                        "INSERT INTO clicks (banner_id, occurred_at, user_agent, visitor, "
                        "ip_prefix) VALUES (1, :t, :ua, :v, :p)"
                    ),
                    {
                        "t": now,
                        "ua": agent,
                        "v": visitor_key(salt, ipaddress.ip_address(ip).packed, agent),
                        "p": prefix24(ip),
                    },
                )
            await conn.execute(text("DELETE FROM clicks WHERE id = 20"))  # the newest id
        before = read_all(unmigrated_url)
        assert recover_ipv4(before) == {ip for ip, _ in sent[:19]}  # the attack works
        assert salts_that_work(before, sent) == [salt]

        await upgrade(engine)
        repo = SqlRepository(engine)
        after = read_all(unmigrated_url)
        assert len(after["clicks"]) == 19 and "ip_prefix" not in after["clicks"][0]
        assert after["visitor_salts"] == []  # today's plain salt is gone
        assert recover_ipv4(after) == set()
        assert salts_that_work(after, sent) == []
        stats = await repo.click_stats(1)
        assert stats is not None and stats.valid_clicks == 20  # counts stay as they were
        new = await repo.record_clicks([ClickIn(banner_id=1, occurred_at=now)])
        assert new[0].id == 21  # the recreated SQLite table does not reuse a deleted id
    finally:
        # The repository's own SQLite click writer holds a connection too: with the last
        # one closed, SQLite checkpoints the WAL and removes it.
        await (engine.dispose() if repo is None else repo.close())
    if make_url(unmigrated_url).get_backend_name() == "sqlite":
        # secure_delete: the dropped column and salt are overwritten, not left in free pages
        db = Path(make_url(unmigrated_url).database or "")
        blob = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
        assert salt not in blob
        assert [ip for ip, _ in sent if prefix24(ip).encode() in blob] == []


def click_through_a_server(server: ServerProcess, sent: list[tuple[str, str]]) -> None:
    with httpx.Client(timeout=10) as http:
        banner_id = make_banner_sync(server.url, name="guess me")["id"]
        for ip, agent in sent:
            r = http.get(
                f"{server.url}/c/{banner_id}",
                headers={"X-Forwarded-For": ip, "User-Agent": agent},
            )
            assert r.status_code == 302, r.text


def assert_nothing_recovered(rows: Rows, sent: list[tuple[str, str]], key_file: Path) -> bytes:
    """The attack finds nothing, and the controls prove it had what it needed to try.

    Returns the day's salt, unsealed with the key (which the attacker does not hold).
    """
    stored_keys = {c["visitor"] for c in rows["clicks"]}
    assert len(rows["clicks"]) == len(sent) and len(stored_keys) == len(sent)
    assert recover_ipv4(rows) == set()
    assert salts_that_work(rows, sent) == []  # no stored value is the salt in the clear

    # Control: with the key, the stored row unseals to the salt that made every key...
    (row,) = rows["visitor_salts"]
    day = date.fromisoformat(str(row["day"]))  # SQLite hands back text
    salt = load_salt_key("", str(key_file)).unseal(bytes(row["sealed"]), day)
    made = {visitor_key(salt, ipaddress.ip_address(ip).packed, ua) for ip, ua in sent}
    assert made == stored_keys
    # ... and with that salt and the old /24 prefixes, the same attack recovers them all.
    leaked = dict(rows)
    leaked["old_salt"] = [{"salt": salt}]
    by_key = {visitor_key(salt, ipaddress.ip_address(ip).packed, ua): ip for ip, ua in sent}
    leaked["clicks"] = [{**c, "ip_prefix": prefix24(by_key[c["visitor"]])} for c in rows["clicks"]]
    assert recover_ipv4(leaked) == {ip for ip, _ in sent}
    return salt


def server_env(key_file: Path) -> dict[str, str]:
    return {
        "BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN,
        "BANNERTRACK_TRUSTED_PROXIES": "127.0.0.1",
        "BANNERTRACK_LOG_LEVEL": "DEBUG",
        "BANNERTRACK_SALT_KEY": "",
        "BANNERTRACK_SALT_KEY_FILE": str(key_file),
    }


def assert_secrets_not_in(blob: bytes, salt: bytes, key_file: Path) -> None:
    key = key_file.read_text().strip()
    for secret in (salt, salt.hex().encode(), key.encode()):
        assert secret not in blob


@pytest.mark.slow
@pytest.mark.e2e
def test_no_address_recovered_from_a_sqlite_server_database(tmp_path: Path) -> None:
    sent = visitors(30, seed=6)
    db, log, key_file = tmp_path / "guess.db", tmp_path / "server.log", tmp_path / "k" / "salt.key"
    with ServerProcess(f"sqlite:///{db}", log, env=server_env(key_file)) as server:
        click_through_a_server(server, sent)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    salt = assert_nothing_recovered(read_sqlite(db), sent, key_file)
    files = b"".join(p.read_bytes() for p in tmp_path.glob("guess.db*"))
    assert_secrets_not_in(files + log.read_bytes(), salt, key_file)


@pytest.mark.slow
@pytest.mark.e2e
def test_no_address_recovered_from_a_postgresql_server_database(
    postgres: PostgresFactory, tmp_path: Path
) -> None:
    sent = visitors(30, seed=7)
    url, log, key_file = postgres.create(), tmp_path / "server.log", tmp_path / "salt.key"
    try:
        # Two instances on one database, one key: they must key visitors alike.
        env = server_env(key_file)
        with (
            ServerProcess(url, log, env=env) as a,
            ServerProcess(url, tmp_path / "b.log", env=env) as b,
        ):
            click_through_a_server(a, sent[:15])
            click_through_a_server(b, sent[15:])
        salt = assert_nothing_recovered(read_postgres(url), sent, key_file)
        assert_secrets_not_in(log.read_bytes() + (tmp_path / "b.log").read_bytes(), salt, key_file)
    finally:
        postgres.drop(url)
