"""The CLI against a real server process over HTTP."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.conftest import ADMIN_TOKEN
from tests.support.server import ServerProcess, free_port

from bannertrack.cli import main


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("cli")
    url = f"sqlite:///{tmp / 'cli.db'}"
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["demo", "--banners", "6", "--clicks", "3000", "--days", "3", "--seed", "1"],
        env={"BANNERTRACK_DATABASE_URL": url},
    )
    assert result.exit_code == 0, result.output
    with ServerProcess(
        url, tmp / "server.log", env={"BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN}
    ) as srv:
        yield srv


def run(*args: str, token: str | None = ADMIN_TOKEN) -> tuple[int, str, str]:
    env = (
        {"BANNERTRACK_ADMIN_TOKEN": token} if token is not None else {"BANNERTRACK_ADMIN_TOKEN": ""}
    )
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_help_explains_every_command() -> None:
    for args in ([], ["cache"], ["cache", "test"], ["api"], ["demo"], ["migrate"], ["placements"]):
        code, out, _ = run(*args, "--help")
        assert code == 0 and "Usage:" in out


def test_placements_create_set_list_stats_delete(server: ServerProcess) -> None:
    code, out, err = run("placements", "create", "Footer", "--width", "468", "--url", server.url)
    assert code == 0, err
    placement = int(out.split()[2].rstrip(":"))
    code, out, err = run("placements", "set", str(placement), "1:3", "2", "--url", server.url)
    assert code == 0 and "1:3 2:1" in out, err
    code, out, _ = run("placements", "list", "--url", server.url, "--json")
    listed = {p["id"]: p for p in json.loads(out)}
    assert code == 0 and len(listed) == 4  # the demo's three and this one
    assert [b["weight"] for b in listed[placement]["banners"]] == [3, 1]
    code, out, _ = run("placements", "stats", "1", "--url", server.url)
    assert code == 0 and "impressions" in out and "all" in out
    code, _, err = run("placements", "set", str(placement), "1:0", "--url", server.url)
    assert code == 1 and "weight" in err and "Traceback" not in err
    code, _, err = run("placements", "set", str(placement), "x", "--url", server.url)
    assert code == 2 and "BANNER[:WEIGHT]" in err
    code, out, _ = run("placements", "delete", str(placement), "--url", server.url)
    assert code == 0
    code, _, err = run("placements", "delete", str(placement), "--url", server.url)
    assert code == 1 and "not found" in err


def test_stats_table_and_json(server: ServerProcess) -> None:
    code, out, _ = run("cache", "stats", "--url", server.url)
    assert code == 0 and "banner_stats" in out and "hit %" in out
    code, out, _ = run("cache", "stats", "--url", server.url, "--json")
    body = json.loads(out)
    assert code == 0 and body["enabled"] and "namespaces" in body


def test_warm_clear_invalidate(server: ServerProcess) -> None:
    code, out, _ = run("cache", "clear", "--url", server.url, "--json")
    assert code == 0 and "cleared" in json.loads(out)
    code, out, _ = run("cache", "warm", "--url", server.url, "--json")
    assert code == 0 and json.loads(out)["loaded"] > 0
    code, out, _ = run("cache", "invalidate", "--url", server.url, "--banner", "1")
    assert code == 0 and out.startswith("removed ")
    code, out, _ = run("cache", "invalidate", "--url", server.url, "--namespace", "top_banners")
    assert code == 0
    code, _, err = run("cache", "invalidate", "--url", server.url)
    assert code == 2 and "exactly one" in err


def test_cache_test_measures_on_the_spot(server: ServerProcess) -> None:
    code, out, _ = run(
        "cache", "test", "--url", server.url, "--samples", "5", "--warm-reads", "3", "--json"
    )
    assert code == 0, out
    body = json.loads(out)
    assert [r["endpoint"] for r in body["results"]] == ["banner", "stats", "with-stats", "top"]
    for r in body["results"]:
        assert r["cold_p50_ms"] > 0 and r["warm_p50_ms"] > 0
        # 5 cold loads and 15 warm reads: exactly 15 hits out of 20 reads.
        assert r["hit_rate"] == "75.00%", r
    code, out, _ = run("cache", "test", "--url", server.url, "--samples", "3")
    assert code == 0 and "speedup" in out


def test_wrong_token_and_no_server_give_one_line(server: ServerProcess) -> None:
    code, out, err = run("cache", "clear", "--url", server.url, token="wrong")
    assert code == 1 and err.count("\n") == 1 and "refused the admin token" in err
    assert "Traceback" not in out + err
    code, _, err = run("cache", "clear", "--url", server.url, token=None)
    assert code == 1 and "BANNERTRACK_ADMIN_TOKEN" in err
    dead = f"http://127.0.0.1:{free_port()}"
    for args in (["stats"], ["clear"], ["warm"], ["test"]):
        code, out, err = run("cache", *args, "--url", dead)
        assert code == 1 and err.count("\n") == 1, (args, err)
        assert "cannot reach bannertrack" in err or "BANNERTRACK_ADMIN_TOKEN" in err
        assert "Traceback" not in out + err


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    env = {"BANNERTRACK_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}"}
    for _ in range(2):
        result = CliRunner().invoke(main, ["migrate"], env=env)
        assert result.exit_code == 0 and "revision" in result.stdout


def test_tables_are_not_cut_when_stdout_is_not_a_terminal(server: ServerProcess) -> None:
    # CliRunner's stdout is not a TTY, like `| less` or `> file`: no header or number
    # may be truncated to fit 80 columns.
    code, out, _ = run("cache", "stats", "--url", server.url)
    assert code == 0
    assert "…" not in out
    header = next(line for line in out.splitlines() if "namespace" in line)
    for head in ("hits", "misses", "hit %", "sets", "dels", "expired", "evicted", "size"):
        assert head in header


def test_export_into_a_closed_pipe_exits_quietly(server: ServerProcess) -> None:
    # `bannertrack export ... | head -n 1`: the reader leaves after one line, long before
    # the CSV ends (the busiest demo banner has far more than a pipe buffer of rows).
    env = {**os.environ, "BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bannertrack", "export", "--url", server.url, "--banner", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    with proc.stderr:
        stderr = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    assert first.startswith(b"occurred_at,")
    assert code == 0, stderr
    assert "Traceback" not in stderr and "Broken pipe" not in stderr, stderr


def test_demo_shows_the_counting_features_and_never_loads_twice(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    env = {"BANNERTRACK_DATABASE_URL": f"sqlite:///{db}"}
    args = ["demo", "--banners", "5", "--clicks", "4000", "--days", "3", "--seed", "7"]
    args += ["--url", f"http://127.0.0.1:{free_port()}"]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        totals = conn.execute(
            "SELECT sum(total_clicks), sum(valid_clicks), sum(bot_clicks), "
            "sum(repeat_clicks), sum(impressions) FROM banner_totals"
        ).fetchone()
        early = conn.execute(
            "SELECT count(*) FROM clicks JOIN banners ON banners.id = clicks.banner_id "
            "WHERE clicks.occurred_at < banners.created_at"
        ).fetchone()[0]
        ids = [r[0] for r in conn.execute("SELECT id FROM banners ORDER BY id")]
        placed = conn.execute(
            "SELECT count(DISTINCT placement_id), sum(impressions), sum(clicks), "
            "sum(valid_clicks) FROM placement_minutes"
        ).fetchone()
        signed = conn.execute(
            "SELECT count(*) FROM clicks WHERE placement_id IS NOT NULL AND signature = 'valid'"
        ).fetchone()[0]
    total, valid, bots, repeats, impressions = totals
    # Three placements serve the banners: most people's clicks and views came through one.
    assert placed[0] == 3 and 0 < placed[1] < impressions
    assert placed[2] == signed and 0.3 * valid < placed[3] <= placed[2]
    assert total == 4000 and valid + bots + repeats == total
    assert 0.03 * total < bots < 0.12 * total  # about 7 % from crawlers and previews
    assert 0.01 * total < repeats < 0.10 * total  # second clicks within the hour
    assert 0.01 < valid / impressions < 0.10  # a believable CTR
    assert early == 0 and len(ids) == 5

    again = CliRunner().invoke(main, args, env=env)
    assert again.exit_code == 1 and "--reset" in again.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM banners").fetchone()[0] == 5

    reset = CliRunner().invoke(main, [*args, "--reset"], env=env)
    assert reset.exit_code == 0, reset.output
    with sqlite3.connect(db) as conn:
        after = [r[0] for r in conn.execute("SELECT id FROM banners ORDER BY id")]
        assert conn.execute("SELECT sum(total_clicks) FROM banner_totals").fetchone()[0] == 4000
    # Every banner was deleted and the new set is numbered from 1 again (the README's ids).
    assert after == [1, 2, 3, 4, 5] and sorted(ids) == after
    assert "created banners 1..5" in reset.output


def test_export_conversions(server: ServerProcess, tmp_path: Path) -> None:
    import httpx

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=server.url, headers=admin) as c:
        banner = c.post(
            "/api/v1/banners",
            json={
                "name": "converting",
                "image_url": "https://cdn.example.com/c.png",
                "target_url": "https://shop.example.com/c",
                "click_id_param": "bt_click",
            },
        ).json()
        location = c.get(f"/c/{banner['id']}", follow_redirects=False).headers["location"]
        click_id = location.split("bt_click=")[1]
        body = {"click_id": click_id, "goal": "sale", "value": "19.90", "currency": "EUR"}
        assert c.post("/api/v1/conversions", json=body).status_code == 201
    out = tmp_path / "conversions.csv"
    code, _, err = run(
        "export", "--url", server.url, "--banner", str(banner["id"]), "--conversions",
        "-o", str(out),
    )  # fmt: skip
    assert code == 0 and "wrote 1 conversions" in err
    lines = out.read_text().splitlines()
    assert lines[0] == "occurred_at,goal,value,currency,click_id,placement_id"
    assert lines[1].split(",")[1:] == ["sale", "19.90", "EUR", click_id, ""]
