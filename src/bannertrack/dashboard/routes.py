"""The dashboard's router: every page, the session middleware around them, static files."""

from __future__ import annotations

from litestar import Router
from litestar.static_files import create_static_files_router

from bannertrack.dashboard import banner_admin, live, ops, placement_admin, signin, views
from bannertrack.dashboard.session import session_config
from bannertrack.dashboard.web import HERE


def dashboard_router() -> Router:
    return Router(
        path="/",
        middleware=[session_config().middleware],
        route_handlers=[
            views.overview,
            views.banner_page,
            banner_admin.banner_list,
            banner_admin.new_banner_form,
            banner_admin.create_banner,
            banner_admin.edit_banner_form,
            banner_admin.update_banner,
            banner_admin.set_status,
            banner_admin.delete_banner,
            placement_admin.placement_list,
            placement_admin.placement_page,
            placement_admin.new_placement_form,
            placement_admin.create_placement,
            placement_admin.edit_placement_form,
            placement_admin.update_placement,
            placement_admin.delete_placement,
            placement_admin.set_weights,
            signin.login_page,
            signin.login,
            signin.logout,
            ops.ops_page,
            ops.cache_fragment,
            ops.cache_action,
            live.live_page,
            live.live_fragment,
            create_static_files_router(
                path="/dashboard/static",
                directories=[HERE / "static"],
                include_in_schema=False,
                cache_control=None,
            ),
        ],
    )
