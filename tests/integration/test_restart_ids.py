"""``restart_banner_ids``: only an empty banners table numbers from 1 again (SQLite and
PostgreSQL); otherwise ids are never reused."""

from __future__ import annotations

from tests.integration.test_repository import new_banner

from bannertrack.db.repository import SqlRepository


async def test_ids_restart_only_when_no_banner_is_left(sql_repo: SqlRepository) -> None:
    first = await sql_repo.create_banner(new_banner(1))
    second = await sql_repo.create_banner(new_banner(2))
    await sql_repo.delete_banner(second.id)
    assert await sql_repo.restart_banner_ids() is False  # one is left: nothing changes
    assert (await sql_repo.create_banner(new_banner(3))).id == second.id + 1
    for banner in (await sql_repo.list_banners(0, 10)).items:
        await sql_repo.delete_banner(banner.id)
    assert (await sql_repo.create_banner(new_banner(4))).id > first.id  # not reused by itself
    for banner in (await sql_repo.list_banners(0, 10)).items:
        await sql_repo.delete_banner(banner.id)
    assert await sql_repo.restart_banner_ids() is True
    assert (await sql_repo.create_banner(new_banner(5))).id == 1
