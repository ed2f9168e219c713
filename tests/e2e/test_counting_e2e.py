"""Counts and privacy checked from outside, against real server processes.

The mix of requests imitates the issue's checker: real browsers, crawlers, link
previews, a request without a user agent, repeats within the dedup window, HEAD
requests and prefetches, all from known forwarded addresses behind a trusted proxy
(the test itself, on 127.0.0.1). Every count is compared with the mix sent. With two
server processes on one PostgreSQL, consecutive requests alternate between them, so a
visitor's repeats cross instances.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url
from tests.conftest import ADMIN, ADMIN_TOKEN, INGEST, INGEST_TOKEN
from tests.support.banners import make_banner_sync
from tests.support.metrics import metric
from tests.support.server import ServerProcess, free_port
from tests.support.services import PostgresFactory, _asyncpg_dsn, _in_thread
from tests.support.waiting import wait_until_sync

from bannertrack.cli import main
from bannertrack.db.tables import metadata

pytestmark = pytest.mark.slow

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
PREVIEWS = (
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
)
NO_AGENT = None  # the request is sent without a User-Agent header

SECRET_V4 = "203.0.113.77"
SECRET_V6 = "2001:db8:85a3:7:8a2e:370:7334:77"
# Their networks are not stored either: a prefix narrowed a guess to 256 addresses.
NETWORKS = [b"203.0.113.0/24", b"2001:db8:85a3::/48"]

# (method, kind, forwarded address, user agent, extra headers); kind "c" click, "i" pixel.
Step = tuple[str, str, str, str | None, dict[str, str]]


def the_mix() -> tuple[list[Step], dict[str, Any]]:
    steps: list[Step] = []
    click = lambda ip, ua, **h: steps.append(("GET", "c", ip, ua, h))  # noqa: E731
    click("198.51.100.10", CHROME)  # visitor A: valid
    click("198.51.100.10", CHROME)  # A again: repeat
    click("198.51.100.11", FIREFOX)  # visitor B: valid
    click("198.51.100.10", CHROME)  # A a third time: repeat
    click("198.51.100.10", SAFARI)  # same address, another browser: another visitor, valid
    click(SECRET_V6, CHROME)  # visitor D over IPv6: valid
    click(SECRET_V6, CHROME)  # D again: repeat
    click("66.249.66.1", GOOGLEBOT)  # crawler
    click("66.249.66.2", GOOGLEBOT)  # crawler
    click("157.55.39.1", BINGBOT)  # crawler
    for i, agent in enumerate(PREVIEWS):
        click(f"192.0.2.{i + 1}", agent)  # link previews
    click("192.0.2.99", NO_AGENT)  # no user agent: bot
    steps.append(("HEAD", "c", "198.51.100.12", CHROME, {}))
    steps.append(("HEAD", "c", "198.51.100.13", FIREFOX, {}))
    for header in ("Sec-Purpose", "Purpose", "X-Moz"):
        steps.append(("GET", "c", "198.51.100.14", CHROME, {header: "prefetch"}))
    for i in range(20):
        steps.append(("GET", "i", f"198.51.100.{30 + i % 7}", CHROME, {}))
    steps.append(("HEAD", "i", "198.51.100.40", CHROME, {}))
    steps.append(("GET", "i", "198.51.100.41", CHROME, {"Sec-Purpose": "prefetch"}))
    expected = {
        "total_clicks": 15,
        "valid_clicks": 4,
        "bot_clicks": 8,
        "repeat_clicks": 3,
        "impressions": 20,
        "ctr": 0.2,
    }
    return steps, expected


def send(urls: list[str], banner_id: int, steps: list[Step]) -> None:
    with httpx.Client(timeout=10) as http:
        for n, (method, kind, ip, agent, extra) in enumerate(steps):
            headers = {"X-Forwarded-For": ip, **extra}
            request = http.build_request(
                method, f"{urls[n % len(urls)]}/{kind}/{banner_id}", headers=headers
            )
            if agent is None:
                del request.headers["user-agent"]
            else:
                request.headers["user-agent"] = agent
            r = http.send(request)
            assert r.status_code == (302 if kind == "c" else 200), (n, r.status_code, r.text)
            if kind == "c":
                assert r.headers["cache-control"] == "private, no-store"
                assert r.headers["location"].startswith("https://shop.example.com/")


def create_banner(url: str) -> int:
    return int(make_banner_sync(url, name="mix")["id"])


def stats_when_settled(url: str, banner_id: int, expected: dict[str, Any]) -> dict[str, Any]:
    """Stats once impressions are flushed (about a second) and invalidations delivered."""
    seen: list[dict[str, Any]] = []

    def settled() -> bool:
        seen.append(httpx.get(f"{url}/api/v1/banners/{banner_id}/stats", timeout=10).json())
        return all(seen[-1][k] == v for k, v in expected.items())

    def differences() -> str:
        return f"stats {seen[-1]} never matched {expected}"

    wait_until_sync(settled, timeout=10, interval=0.1, what=differences)
    return seen[-1]


def server_env() -> dict[str, str]:
    return {
        "BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN,
        "BANNERTRACK_INGEST_TOKEN": INGEST_TOKEN,
        "BANNERTRACK_TRUSTED_PROXIES": "127.0.0.1",
        "BANNERTRACK_LOG_LEVEL": "DEBUG",
    }


def check_mix(urls: list[str]) -> None:
    banner_id = create_banner(urls[0])
    steps, expected = the_mix()
    send(urls, banner_id, steps)
    for url in urls:
        got = stats_when_settled(url, banner_id, expected)
        assert {k: got[k] for k in expected} == expected, url
        assert got["total_clicks"] == got["clicks_last_hour"] == got["clicks_last_24h"]
    # Unknown ids answer 404 and are counted apart, per endpoint.
    for kind in ("c", "i"):
        assert httpx.get(f"{urls[0]}/{kind}/987654", timeout=10).status_code == 404
    metrics = httpx.get(f"{urls[0]}/metrics", timeout=10).text
    for endpoint in ("click", "impression"):
        assert metric(metrics, "bannertrack_unknown_banner_requests_total", endpoint=endpoint) == 1
    valid_top = httpx.get(
        f"{urls[-1]}/api/v1/banners/top", params={"count": "valid"}, timeout=10
    ).json()
    assert valid_top["items"][0]["clicks"] == expected["valid_clicks"]


def secrets_bytes() -> list[bytes]:
    out = []
    for ip in (SECRET_V4, SECRET_V6):
        out += [ip.encode(), ipaddress.ip_address(ip).packed]
    out.append(ipaddress.ip_address(SECRET_V6).exploded.encode())
    return out + NETWORKS


def send_secret_traffic(url: str, banner_id: int) -> None:
    with httpx.Client(timeout=10) as http:
        for ip in (SECRET_V4, SECRET_V6):
            for agent in (CHROME, GOOGLEBOT):
                r = http.get(
                    f"{url}/c/{banner_id}?utm_source=mail",
                    headers={"X-Forwarded-For": ip, "User-Agent": agent},
                )
                assert r.status_code == 302
            r = http.get(f"{url}/i/{banner_id}", headers={"X-Forwarded-For": f"{ip}, 127.0.0.1"})
            assert r.status_code == 200
            r = http.post(
                f"{url}/api/v1/banners/{banner_id}/clicks",
                json={"ip": ip, "user_agent": CHROME, "referrer": "https://news.example/"},
                headers=INGEST,
            )
            assert r.status_code == 201
            r = http.post(
                f"{url}/api/v1/banners/{banner_id}/clicks", json={"ip": ip + "x"}, headers=INGEST
            )
            assert r.status_code == 400 and ip not in r.text  # refused, and not echoed
        r = http.get(f"{url}/api/v1/banners/{banner_id}/clicks.csv", headers=ADMIN)
        assert r.status_code == 200
        assert r.text.count(CHROME) >= 4  # the clicks are there, their addresses are not
        hidden = [SECRET_V4, SECRET_V6] + [n.decode() for n in NETWORKS]
        assert [h for h in hidden if h in r.text] == []
        assert SECRET_V4 not in http.get(f"{url}/metrics").text


def impressions_flushed(url: str, banner_id: int) -> None:
    """Until the two impressions of ``send_secret_traffic`` are written (a background flush,
    about a second), so the database searched holds them."""

    def flushed() -> bool:
        stats = httpx.get(f"{url}/api/v1/banners/{banner_id}/stats", timeout=10).json()
        return int(stats["impressions"]) >= 2

    wait_until_sync(flushed, timeout=15, interval=0.1)


def assert_nowhere(blobs: dict[str, bytes]) -> None:
    for name, blob in blobs.items():
        for secret in secrets_bytes():
            assert secret not in blob, f"{secret!r} found in {name}"


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    db = tmp_path / "counts.db"
    with ServerProcess(f"sqlite:///{db}", tmp_path / "server.log", env=server_env()) as srv:
        yield srv, db


def test_mix_counts_on_one_server(sqlite_server: tuple[ServerProcess, Path]) -> None:
    server, _ = sqlite_server
    check_mix([server.url])


def test_mix_counts_across_two_servers_on_one_postgresql(
    postgres: PostgresFactory, tmp_path: Path
) -> None:
    url = postgres.create()
    try:
        with (
            ServerProcess(url, tmp_path / "a.log", env=server_env()) as a,
            ServerProcess(url, tmp_path / "b.log", env=server_env()) as b,
        ):
            check_mix([a.url, b.url])
    finally:
        postgres.drop(url)


def test_raw_ip_reaches_neither_database_nor_log(tmp_path: Path) -> None:
    db = tmp_path / "privacy.db"
    log = tmp_path / "server.log"
    with ServerProcess(f"sqlite:///{db}", log, env=server_env()) as server:
        banner_id = create_banner(server.url)
        send_secret_traffic(server.url, banner_id)
        impressions_flushed(server.url, banner_id)
        export_with_the_cli(server.url, banner_id, tmp_path)
    files = sorted(tmp_path.glob("privacy.db*"))
    assert files, "no database file"
    blobs = {f.name: f.read_bytes() for f in files}
    blobs["server.log"] = log.read_bytes()
    assert CHROME.encode() in blobs["privacy.db"] + blobs.get("privacy.db-wal", b"")
    assert b"DEBUG" in blobs["server.log"]  # the log did run at its most talkative
    assert_nowhere(blobs)


def test_raw_ip_reaches_neither_database_nor_log_on_postgresql(
    postgres: PostgresFactory, tmp_path: Path
) -> None:
    url = postgres.create()
    log = tmp_path / "server.log"
    try:
        with ServerProcess(url, log, env=server_env()) as server:
            banner_id = create_banner(server.url)
            send_secret_traffic(server.url, banner_id)
            impressions_flushed(server.url, banner_id)
        dump = dump_postgres(url)
        assert CHROME.encode() in dump
        assert_nowhere({"postgresql dump": dump, "server.log": log.read_bytes()})
    finally:
        postgres.drop(url)


def dump_postgres(url: str) -> bytes:
    """Every row of every table, as PostgreSQL's own text form (binary as hex)."""
    tables = [t.name for t in metadata.sorted_tables] + ["alembic_version"]

    async def go() -> bytes:
        import asyncpg

        _, kw = _asyncpg_dsn(url)
        conn = await asyncpg.connect(**kw)
        try:
            parts = []
            for name in tables:
                rows = await conn.fetch(f"SELECT t::text AS row FROM {name} t")
                parts += [r["row"].encode() for r in rows]
            return b"\n".join(parts)
        finally:
            await conn.close()

    assert make_url(url).get_backend_name() == "postgresql"
    return _in_thread(go)  # type: ignore[no-any-return]


def export_with_the_cli(url: str, banner_id: int, tmp_path: Path) -> None:
    env = {"BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN}
    over_http = httpx.get(
        f"{url}/api/v1/banners/{banner_id}/clicks.csv", headers=ADMIN, timeout=10
    ).content
    out = tmp_path / "clicks.csv"
    result = CliRunner().invoke(
        main, ["export", "--url", url, "--banner", str(banner_id), "-o", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == over_http and over_http.count(b"\n") == 7
    assert "wrote 6 clicks" in result.stderr
    result = CliRunner().invoke(
        main,
        ["export", "--url", url, "--banner", str(banner_id), "--from", "2000-01-01"],
        env=env,
    )
    assert result.exit_code == 0 and result.stdout_bytes == over_http
    result = CliRunner().invoke(
        main, ["export", "--url", url, "--banner", "987654", "-o", str(out)], env=env
    )
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "404" in result.stderr
    dead = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(main, ["export", "--url", dead, "--banner", "1"], env=env)
    assert result.exit_code == 1 and "cannot reach bannertrack" in result.stderr
    assert "Traceback" not in result.output
